# Copyright (c) mmaffseg contributors. All rights reserved.
"""Learned upsampling stages (pixel shuffle, transposed convolution or interpolation + conv).

Used by DSRL (Wang et al., "Dual Super-Resolution Learning for Semantic Segmentation", CVPR 2020)
for its super-resolution decoder and, optionally, its SSSR upsampling. The sub-pixel ("pixel
shuffle") layer is the one of ESPCN (Shi et al., "Real-Time Single Image and Video
Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network", CVPR 2016).
The layer itself comes from mmcv's ``build_upsample_layer``; this file only fills in the arguments
each layer type needs so that every type scales by exactly ``scale_factor``.
"""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import ConvModule, build_upsample_layer
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor

UPSAMPLE_TYPES = ('pixel_shuffle', 'deconv', 'bilinear', 'nearest')
# Default configs (module constants, never modified: ConvModule and the builders copy them).
PIXEL_SHUFFLE_CFG = dict(type='pixel_shuffle', upsample_kernel=3)
RELU_CFG = dict(type='ReLU')


def build_learned_upsample(upsample_cfg: ConfigType, in_channels: int, out_channels: int,
                           scale_factor: int) -> nn.Module:
    """Build one layer that maps (B, in, H, W) to (B, out, s * H, s * W).

    Args:
        upsample_cfg (dict): ``type`` is one of 'pixel_shuffle' (conv to s^2 * out channels and
            sub-pixel shuffle; extra key ``upsample_kernel``, default 3), 'deconv' (transposed
            conv; ``kernel_size`` and ``stride`` default to s, padding 0), 'bilinear' or
            'nearest' (interpolation followed by a 3x3 conv that changes the channels).
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        scale_factor (int): Integer upsampling factor s >= 1.

    Returns:
        nn.Module: The layer.
    """
    cfg = dict(upsample_cfg)
    layer_type = cfg.get('type')
    if layer_type not in UPSAMPLE_TYPES:
        raise ValueError(f'upsample_cfg type must be one of {UPSAMPLE_TYPES}, got '
                         f'{layer_type!r}.')
    if int(scale_factor) != scale_factor or scale_factor < 1:
        raise ValueError(f'A learned upsampling stage needs an integer scale_factor >= 1, got '
                         f'{scale_factor}.')
    scale_factor = int(scale_factor)
    if layer_type == 'pixel_shuffle':
        cfg.setdefault('upsample_kernel', 3)
        return build_upsample_layer(cfg, in_channels=in_channels, out_channels=out_channels,
                                    scale_factor=scale_factor)
    if layer_type == 'deconv':
        cfg.setdefault('kernel_size', scale_factor)
        cfg.setdefault('stride', scale_factor)
        return build_upsample_layer(cfg, in_channels=in_channels, out_channels=out_channels)
    if layer_type == 'bilinear':
        cfg.setdefault('align_corners', False)
    interpolate = build_upsample_layer(cfg, scale_factor=scale_factor)
    return nn.Sequential(interpolate, nn.Conv2d(in_channels, out_channels, 3, padding=1))


@MODELS.register_module()
class UpsampleStage(nn.Module):
    """A learned upsampling layer followed by ``num_convs`` 3x3 ConvModules.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        scale_factor (int): Integer upsampling factor. Defaults to 2.
        upsample_cfg (dict): See :func:`build_learned_upsample`.
            Defaults to ``dict(type='pixel_shuffle', upsample_kernel=3)``.
        num_convs (int): 3x3 conv-norm-act blocks after the upsampling. Defaults to 1.
        conv_cfg (dict, optional): Conv config of those blocks. Defaults to None.
        norm_cfg (dict, optional): Norm config of those blocks. Defaults to None.
        act_cfg (dict): Activation config of those blocks. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 scale_factor: int = 2,
                 upsample_cfg: ConfigType = PIXEL_SHUFFLE_CFG,
                 num_convs: int = 1,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 act_cfg: Optional[ConfigType] = RELU_CFG) -> None:
        super().__init__()
        self.upsample = build_learned_upsample(upsample_cfg, in_channels, out_channels,
                                               scale_factor)
        self.convs = nn.Sequential(*[
            ConvModule(out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg, act_cfg=act_cfg) for _ in range(num_convs)
        ])

    def forward(self, x: Tensor) -> Tensor:
        """(B, in, H, W) -> (B, out, s * H, s * W)."""
        return self.convs(self.upsample(x))
