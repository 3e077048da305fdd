# Copyright (c) mmaffseg contributors. All rights reserved.
"""Mixed pooling module (MPM).

Paper: Qibin Hou, Li Zhang, Ming-Ming Cheng, Jiashi Feng, "Strip Pooling: Rethinking Spatial
Pooling for Scene Parsing", CVPR 2020.

Naming trap: this is the module the official code calls ``StripPooling``; the paper's strip
pooling module (``SPBlock`` there) is :class:`~mmaffseg.models.layers.SPM`.

Two sub-modules on reduced channels ``i = C // 4`` capture short- and long-range context::

    s = ReLU(N(Conv1x1(x)))                           short-range input
    short = ReLU(N(Conv3x3(ReLU(N(Conv3x3(s))
                   + sum_k up(N(Conv3x3(pool_k(s))))))))   pool_k: square adaptive pools
    l = ReLU(N(Conv1x1(x)))                           long-range input (separate weights)
    long = ReLU(N(Conv3x3(ReLU(DualStripPooling(l)))))
    out = ReLU(x + N(Conv1x1([short, long])))

``up`` is bilinear; the official code uses ``align_corners=True``.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor

from .adaptive_pooling import adaptive_avg_pool2d
from .strip_pooling import DualStripPooling


@MODELS.register_module()
class MPM(nn.Module):
    """Mixed pooling module: pyramid pooling (short range) + strip pooling (long range).

    Args:
        in_channels (int): Channels of the input and the output.
        pool_sizes (Sequence[int]): Output sizes of the square adaptive average pools of the
            short-range branch. Defaults to (20, 12) (the official SPHead).
        align_corners (bool): ``align_corners`` of the bilinear upsampling of the pooled maps.
            Defaults to True (official).
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation config. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 in_channels: int,
                 pool_sizes: Sequence[int] = (20, 12),
                 align_corners: bool = True,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),  # noqa: B006 (mmcv style)
                 act_cfg: ConfigType = dict(type='ReLU')) -> None:  # noqa: B006 (mmcv style)
        super().__init__()
        inter = in_channels // 4
        self.pool_sizes = tuple(pool_sizes)
        self.align_corners = align_corners
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, bias=False)

        def conv(cin, cout, k, act=True):
            return ConvModule(cin, cout, k, padding=k // 2, act_cfg=act_cfg if act else None,
                              **common)

        # short range: a 3x3 conv at full resolution plus one per pooled (k x k) map
        self.reduce_short = conv(in_channels, inter, 1)
        self.short_conv = conv(inter, inter, 3, act=False)
        self.pool_convs = nn.ModuleList(conv(inter, inter, 3, act=False) for _ in pool_sizes)
        self.short_fuse = conv(inter, inter, 3)
        # long range: strip pooling along H and along W
        self.reduce_long = conv(in_channels, inter, 1)
        self.strip_pool = DualStripPooling(inter, inter, conv_cfg, norm_cfg)
        self.long_fuse = conv(inter, inter, 3)
        self.project = conv(2 * inter, in_channels, 1, act=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        size = x.shape[2:]
        short = self.reduce_short(x)
        context = self.short_conv(short)
        for pool_size, pool_conv in zip(self.pool_sizes, self.pool_convs):
            pooled = pool_conv(adaptive_avg_pool2d(short, pool_size))
            context = context + F.interpolate(
                pooled, size=size, mode='bilinear', align_corners=self.align_corners)
        short = self.short_fuse(F.relu(context))
        long = self.long_fuse(F.relu(self.strip_pool(self.reduce_long(x))))
        return F.relu(x + self.project(torch.cat([short, long], dim=1)))
