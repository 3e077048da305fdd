# Copyright (c) mmaffseg contributors. All rights reserved.
"""HANet: height-driven attention between a lower-level and a higher-level feature map.

Choi, Kim & Choo, "Cars Can't Fly up in the Sky: Improving Urban-Scene Segmentation via
Height-driven Attention Networks", CVPR 2020.

The lower-level map is averaged along the width into a short column of ``128 // pos_rfactor``
rows; a few 1-D convolutions, fed with a height positional encoding, turn it into one gate per
channel and row of the higher-level map, which is multiplied in row by row (no residual).
Follows the official ``HANet_Conv`` (pooling, channel dropout, positional encoding injection
point, layer count, ``ceil(Cin / r)`` bottleneck, linear upsampling of the gates).
"""
import math
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptMultiConfig
from torch import Tensor

from ...ops.row_positions import NUM_ROW_BINS
from .adaptive_pooling import adaptive_avg_pool2d, adaptive_max_pool2d
from .height_positional_encoding import HeightPositionalEncoding

# 2-D norm types mapped to their 1-D counterpart, so one mmseg ``norm_cfg`` fits HANet too
_NORM_1D = {'BN': 'BN1d', 'BN2d': 'BN1d', 'IN': 'IN1d', 'IN2d': 'IN1d'}


def norm_cfg_1d(norm_cfg: Optional[dict]) -> Optional[dict]:
    """The 1-D version of a norm config (``BN``/``BN2d`` -> ``BN1d``, ``IN`` -> ``IN1d``).

    ``SyncBN``, ``GN`` and ``LN`` work on ``(B, C, L)`` tensors as they are and are kept.

    Args:
        norm_cfg (dict | None): An mmcv norm config.

    Returns:
        dict | None: The config to use for HANet's 1-D layers.
    """
    if norm_cfg is None:
        return None
    cfg = dict(norm_cfg)
    cfg['type'] = _NORM_1D.get(cfg['type'], cfg['type'])
    return cfg


@MODELS.register_module()
class HANet(BaseModule):
    """Height-driven attention module.

    ``out = x * A[..., None]`` with ``A`` of shape ``(B, out_channels, H)`` computed from
    ``x_lower``::

        x_lower (B, Cin, h, w) -> width pool -> (B, Cin, 128 // pos_rfactor)
        [+ positional encoding if pos_injection == 1] -> channel dropout
        -> conv1d 1x1 Cin -> ceil(Cin / r), norm, act
        [+ positional encoding if pos_injection == 2]
        -> conv1d k3 -> 2 * ceil(Cin / r), norm, act          (num_convs == 3 only)
        -> conv1d k=kernel_size -> Cout -> sigmoid -> linear resize to H

    Args:
        in_channels (int): Channels ``Cin`` of the lower-level map.
        out_channels (int): Channels ``Cout`` of the map that is re-weighted.
        reduction (int): Channel reduction ``r`` of the first 1x1 conv (``ceil(Cin / r)``
            channels). Must be in ``[1, in_channels]``. Default: 64 (the official setting).
        kernel_size (int): Kernel of the last conv, odd. Default: 3.
        num_convs (int): 2 or 3 conv layers (the official ``layer`` argument). Default: 3.
        pos_rfactor (int): The pooled column has ``128 // pos_rfactor`` rows, one per
            height band. Default: 8.
        pos_injection (int | None): Where the positional encoding is added: 1 before the
            first conv, 2 after it, ``None`` for no encoding. Default: 2.
        pos_encoding (str): ``'sinusoid'`` (frozen table + 1, official ``is_encoding=1``) or
            ``'learned'`` (``is_encoding=0``). Default: ``'sinusoid'``.
        pooling (str): ``'mean'`` or ``'max'`` width pooling. Default: ``'mean'``.
        dropout_ratio (float): Channel dropout on the pooled column in training. Default: 0.1.
        pos_noise (float): Std of the training-time band-index noise. Default: 0.5.
        norm_cfg (dict): Norm of the conv layers; 2-D BN/IN types are mapped to 1-D, SyncBN
            is kept. Default: ``dict(type='BN1d')``.
        act_cfg (dict): Activation of the hidden conv layers. Default: ``dict(type='ReLU')``.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: Kaiming
            normal (fan-in) on the convs with zero bias, as the official code.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 reduction: int = 64,
                 kernel_size: int = 3,
                 num_convs: int = 3,
                 pos_rfactor: int = 8,
                 pos_injection: Optional[int] = 2,
                 pos_encoding: str = 'sinusoid',
                 pooling: str = 'mean',
                 dropout_ratio: float = 0.1,
                 pos_noise: float = 0.5,
                 norm_cfg: ConfigType = dict(type='BN1d'),  # noqa: B006 (mmcv style)
                 act_cfg: ConfigType = dict(type='ReLU'),  # noqa: B006
                 init_cfg: OptMultiConfig = dict(  # noqa: B006
                     type='Kaiming', layer='Conv1d', mode='fan_in', nonlinearity='relu',
                     distribution='normal', bias=0)) -> None:
        super().__init__(init_cfg=init_cfg)
        if not (isinstance(reduction, int) and 1 <= reduction <= in_channels):
            raise ValueError(
                f'HANet reduction r must be an int in [1, in_channels={in_channels}] (the '
                f'first conv has ceil(in_channels / r) channels), got r={reduction!r}; lower '
                f'r or check that in_channels is the lower-level feature\'s channels')
        if num_convs not in (2, 3):
            raise ValueError(f'HANet num_convs must be 2 or 3, got {num_convs!r}')
        if kernel_size % 2 != 1:
            raise ValueError(f'HANet kernel_size must be odd to keep the column length, got '
                             f'{kernel_size}')
        if pos_injection not in (1, 2, None):
            raise ValueError(f'HANet pos_injection must be 1 (before the first conv), 2 '
                             f'(after it) or None, got {pos_injection!r}')
        if pos_encoding not in ('sinusoid', 'learned'):
            raise ValueError(f"HANet pos_encoding must be 'sinusoid' or 'learned', got "
                             f'{pos_encoding!r}')
        if pooling not in ('mean', 'max'):
            raise ValueError(f"HANet pooling must be 'mean' or 'max', got {pooling!r}")
        if not (isinstance(pos_rfactor, int) and 1 <= pos_rfactor <= NUM_ROW_BINS):
            raise ValueError(f'HANet pos_rfactor must be an int in [1, {NUM_ROW_BINS}] (the '
                             f'pooled column has {NUM_ROW_BINS} // pos_rfactor rows), got '
                             f'{pos_rfactor!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.pos_injection = pos_injection
        mid_channels = math.ceil(in_channels / reduction)
        norm_1d = norm_cfg_1d(norm_cfg)
        conv1d = dict(type='Conv1d')

        self.pooling = pooling
        self.num_bands = NUM_ROW_BINS // pos_rfactor
        self.dropout = nn.Dropout1d(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.conv_reduce = ConvModule(in_channels, mid_channels, 1, conv_cfg=conv1d,
                                      norm_cfg=norm_1d, act_cfg=act_cfg)
        if pos_injection is not None:
            self.pos_encoding = HeightPositionalEncoding(
                in_channels if pos_injection == 1 else mid_channels, pos_rfactor, pos_noise,
                learnable=pos_encoding == 'learned')
        last_in = mid_channels
        if num_convs == 3:
            self.conv_hidden = ConvModule(mid_channels, 2 * mid_channels, 3, padding=1,
                                          conv_cfg=conv1d, norm_cfg=norm_1d, act_cfg=act_cfg)
            last_in = 2 * mid_channels
        self.conv_attention = build_conv_layer(conv1d, last_in, out_channels, kernel_size,
                                               padding=kernel_size // 2, bias=True)

    def attention(self,
                  x_lower: Tensor,
                  height: int,
                  row_positions: Optional[Tensor] = None) -> Tensor:
        """Row gates computed from the lower-level map.

        Args:
            x_lower (Tensor): Lower-level map, shape ``(B, in_channels, h, w)``.
            height (int): Height ``H`` of the map to re-weight.
            row_positions (Tensor | None): Row bins (0..127) of each network input row,
                shape ``(B, H_in)``; ``None`` for crop-relative rows (one-time warning).

        Returns:
            Tensor: Gates in (0, 1), shape ``(B, out_channels, H)``.
        """
        if x_lower.dim() != 4 or x_lower.shape[1] != self.in_channels:
            raise ValueError(
                f'HANet expects the lower-level map as (B, in_channels={self.in_channels}, h, '
                f'w), got shape {tuple(x_lower.shape)}; set in_channels to the channels of '
                f'the feature the attention is computed from')
        pool = adaptive_avg_pool2d if self.pooling == 'mean' else adaptive_max_pool2d
        column = pool(x_lower, (self.num_bands, 1)).squeeze(3)  # (B, Cin, h, w) -> (B, Cin, L)
        if self.pos_injection == 1:
            column = self.pos_encoding(column, row_positions)
        column = self.conv_reduce(self.dropout(column))
        if self.pos_injection == 2:
            column = self.pos_encoding(column, row_positions)
        if hasattr(self, 'conv_hidden'):
            column = self.conv_hidden(column)
        gates = self.conv_attention(column).sigmoid()  # (B, Cout, L)
        return F.interpolate(gates, size=height, mode='linear', align_corners=False)

    def forward(self,
                x_lower: Tensor,
                x: Tensor,
                row_positions: Optional[Tensor] = None) -> Tensor:
        """Re-weight ``x`` row by row.

        Args:
            x_lower (Tensor): Lower-level map the gates come from, ``(B, in_channels, h, w)``.
            x (Tensor): Map to re-weight, ``(B, out_channels, H, W)``; may differ in size.
            row_positions (Tensor | None): Row bins of the network input rows, ``(B, H_in)``.

        Returns:
            Tensor: ``x`` times the gates, ``(B, out_channels, H, W)``.
        """
        if x.dim() != 4 or x.shape[1] != self.out_channels:
            raise ValueError(
                f'HANet expects the map to re-weight as (B, out_channels={self.out_channels}, '
                f'H, W), got shape {tuple(x.shape)}; set out_channels to its channels')
        return x * self.attention(x_lower, x.shape[2], row_positions).unsqueeze(3)
