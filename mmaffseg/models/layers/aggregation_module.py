# Copyright (c) mmaffseg contributors. All rights reserved.
"""Aggregation module of the Context Prior network (CPNet).

Paper: Changqian Yu, Jingbo Wang, Changxin Gao, Gang Yu, Chunhua Shen, Nong Sang,
"Context Prior for Scene Segmentation", CVPR 2020.

A 3x3 conv reduces the input, then two depthwise *spatially separable* convolutions, each a
k x k receptive field factorised into k x 1 and 1 x k (in the two orders), gather spatial
context cheaply; their sum is normalised and activated::

    x = ReLU(N(Conv3x3(in)))
    out = ReLU(N(dw(1,k)(dw(k,1)(x)) + dw(k,1)(dw(1,k)(x))))

The depthwise convs have a bias and no norm (official code); k = 11 in the paper.
"""
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType
from torch import Tensor


@MODELS.register_module()
class AggregationModule(nn.Module):
    """CPNet aggregation module (3x3 reduction + two spatially separable depthwise branches).

    Args:
        in_channels (int): Channels of the input.
        out_channels (int): Channels after the reduction and of the output.
        kernel_size (int): Length k of the separable kernels (odd). Defaults to 11.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict, optional): Norm config of the reduction and of the branch sum; None
            for no norm. Defaults to ``dict(type='BN')``.
        act_cfg (dict, optional): Activation config; None for none.
            Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 11,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = dict(type='BN'),  # noqa: B006 (mmcv style)
                 act_cfg: OptConfigType = dict(type='ReLU')) -> None:  # noqa: B006 (mmcv style)
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'kernel_size must be odd to keep the map size, got {kernel_size}')
        self.reduce_conv = ConvModule(
            in_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        k, p = kernel_size, kernel_size // 2

        def depthwise(kernel, padding):
            return ConvModule(out_channels, out_channels, kernel, padding=padding,
                              groups=out_channels, conv_cfg=conv_cfg, norm_cfg=None,
                              act_cfg=None)

        self.vertical_first = nn.Sequential(depthwise((k, 1), (p, 0)), depthwise((1, k), (0, p)))
        self.horizontal_first = nn.Sequential(depthwise((1, k), (0, p)), depthwise((k, 1), (p, 0)))
        self.norm = build_norm_layer(norm_cfg, out_channels)[1] if norm_cfg else nn.Identity()
        self.act = build_activation_layer(act_cfg) if act_cfg else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W)."""
        x = self.reduce_conv(x)
        return self.act(self.norm(self.vertical_first(x) + self.horizontal_first(x)))
