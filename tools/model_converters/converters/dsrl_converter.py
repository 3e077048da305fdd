# Copyright (c) mmaffseg contributors. All rights reserved.
"""From a DSRL model to its test-time and baseline forms (checkpoint and config conversions).

Li Wang, Dong Li, Yousong Zhu, Lu Tian, Yi Shan. "Dual Super-Resolution Learning for Semantic
Segmentation". CVPR 2020. DSRL's SISR decoder and FA feature transform serve training only.
"""
import inspect
from typing import Dict

import torch
from mmseg.models.segmentors import EncoderDecoder

#: Sub-modules of :class:`~mmaffseg.models.segmentors.DSRLEncoderDecoder` used in training only.
TRAINING_BRANCHES = ('sr_decoder', 'feature_transform')


def strip_training_branches(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Remove the SISR decoder and FA feature transform weights from a DSRL state dict.

    Args:
        state_dict (dict[str, Tensor]): A ``DSRLEncoderDecoder`` state dict.

    Returns:
        dict[str, Tensor]: The entries the test path uses (loadable with ``sr_decoder=None``).
    """
    return {
        k: v
        for k, v in state_dict.items() if k.split('.', 1)[0] not in TRAINING_BRANCHES
    }


def baseline_model_cfg(cfg: dict) -> dict:
    """The plain ``EncoderDecoder`` config with the same backbone, neck and heads as a DSRL one.

    Drops every DSRL-only key (``sr_decoder``, ``loss_fa``, ``downsample_factor``...), so that
    the baseline is trained and tested on whatever resolution its data pipeline gives it.

    Args:
        cfg (dict): A ``DSRLEncoderDecoder`` model config.

    Returns:
        dict: A new ``EncoderDecoder`` config (nested values are shared, not copied).
    """
    accepted = inspect.signature(EncoderDecoder.__init__).parameters
    out = {k: v for k, v in cfg.items() if k in accepted}
    out['type'] = 'EncoderDecoder'
    return out
