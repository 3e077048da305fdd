# Copyright (c) mmaffseg contributors. All rights reserved.
"""A DSRL checkpoint without its training-only branches (``dsrl_strip_training_branches.py``).

Li Wang, Dong Li, Yousong Zhu, Lu Tian, Yi Shan. "Dual Super-Resolution Learning for Semantic
Segmentation". CVPR 2020. DSRL's SISR decoder and FA feature transform serve training only.
"""
from typing import Dict

import torch

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

