# Copyright (c) mmaffseg contributors. All rights reserved.
"""DSRL's SSSR upsampling: segmentation logits to the original image size.

Li Wang, Dong Li, Yousong Zhu, Lu Tian, Yi Shan. "Dual Super-Resolution Learning for Semantic
Segmentation". CVPR 2020. Used by :class:`~mmaffseg.models.segmentors.DSRLEncoderDecoder`.
"""
from typing import Tuple

import torch.nn as nn
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType
from torch import Tensor

from .upsample_stage import build_learned_upsample


@MODELS.register_module()
class SSSRUpsample(nn.Module):
    """DSRL's SSSR module: take segmentation logits to the original image size.

    Args:
        channels (int): Channels of the logits (the decode head's ``out_channels``).
        scale_factor (float): Original size over network-input size (``1 / downsample_factor``).
        upsample_cfg (dict, optional): ``None`` resizes bilinearly straight to the original
            size (no parameters, the usual DSRL setting). Otherwise a learned layer (see
            :func:`~mmaffseg.models.layers.upsample_stage.build_learned_upsample`, e.g.
            ``dict(type='pixel_shuffle', upsample_kernel=3)``) upsamples the logits from the
            network-input size by ``scale_factor``, which must then be an integer.
        align_corners (bool): ``align_corners`` of the bilinear resizes. Defaults to False.
    """

    def __init__(self,
                 channels: int,
                 scale_factor: float,
                 upsample_cfg: OptConfigType = None,
                 align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.upsample = None
        if upsample_cfg is not None:
            if abs(scale_factor - round(scale_factor)) > 1e-6:
                raise ValueError(f'A learned SSSR upsampling needs an integer 1 / '
                                 f'downsample_factor, got {scale_factor:.4g}; use '
                                 f'sssr_upsample_cfg=None or a factor such as 0.5 or 0.25.')
            self.upsample = build_learned_upsample(upsample_cfg, channels, channels,
                                                   round(scale_factor))

    def _resize(self, x: Tensor, size: Tuple[int, int]) -> Tensor:
        if tuple(x.shape[2:]) == tuple(size):
            return x
        return resize(x, size=size, mode='bilinear', align_corners=self.align_corners)

    def forward(self, logits: Tensor, input_size: Tuple[int, int],
                out_size: Tuple[int, int]) -> Tensor:
        """``(B, K, h, w)`` logits of a network input of ``input_size`` -> ``(B, K, *out_size)``."""
        if self.upsample is None:
            return self._resize(logits, out_size)
        return self._resize(self.upsample(self._resize(logits, input_size)), out_size)
