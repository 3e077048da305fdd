# Copyright (c) mmaffseg contributors. All rights reserved.
"""Strip pooling and the strip pooling module (SPM).

Paper: Qibin Hou, Li Zhang, Ming-Ming Cheng, Jiashi Feng, "Strip Pooling: Rethinking Spatial
Pooling for Scene Parsing", CVPR 2020.

Naming trap: the official code calls the paper's *mixed* pooling module ``StripPooling``
(ours: :class:`~mmaffseg.models.layers.MPM`) and the paper's strip pooling module ``SPBlock``
(ours: :class:`SPM`).

:class:`DualStripPooling` is the operation both modules share: average each row and each column
of the map (an H x 1 and a 1 x W strip), filter each strip with a 1-D conv + norm and add the two
back on the full H x W grid (broadcasting a strip is the same as the official ``expand``, and as
its bilinear ``align_corners=True`` upsampling of a size-1 axis).
"""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor

from .adaptive_pooling import adaptive_avg_pool2d


class DualStripPooling(nn.Module):
    """Horizontal and vertical strip pooling with 1-D convolutions, summed on the full grid.

    ``out[b, c, y, x] = N_h(Conv_(3,1)(mean_x in))[y] + N_w(Conv_(1,3)(mean_y in))[x]``

    Args:
        in_channels (int): Channels of the input.
        out_channels (int): Channels of each strip conv and of the output.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config of both strips. Defaults to ``dict(type='BN')``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN')) -> None:  # noqa: B006 (mmcv style)
        super().__init__()
        strip = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None, bias=False)
        # the column of row means (H x 1) is filtered along H, the row of column means along W
        self.conv_h = ConvModule(in_channels, out_channels, (3, 1), padding=(1, 0), **strip)
        self.conv_w = ConvModule(in_channels, out_channels, (1, 3), padding=(0, 1), **strip)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W), before any activation."""
        strip_h = self.conv_h(adaptive_avg_pool2d(x, (None, 1)))  # (B, C, H, 1)
        strip_w = self.conv_w(adaptive_avg_pool2d(x, (1, None)))  # (B, C, 1, W)
        return strip_h + strip_w  # broadcast to (B, C, H, W)


@MODELS.register_module()
class SPM(nn.Module):
    """Strip pooling module: a sigmoid gate from strip-pooled context multiplies the feature.

    ``gate = sigmoid(Conv1x1(ReLU(DualStripPooling(x))))`` and ``forward(x) = x * gate``.

    It is an mmcv ResNet plugin: ``plugins=[dict(cfg=dict(type='SPM'), position='after_conv2',
    stages=(...))]`` puts it after conv2-norm2-ReLU of every bottleneck of the chosen stages,
    which is where the official code applies it (the official placement, last block of stages
    1-3 and every block of stage 4, is :class:`~mmaffseg.models.backbones.ResNetSP`). The plugin's
    output replaces the feature, so :meth:`forward` returns the gated feature and :meth:`gate`
    gives the gate alone (the official ``SPBlock`` output).

    Args:
        in_channels (int): Channels of the input (given by the ResNet plugin builder).
        out_channels (int, optional): Channels of the gate. Defaults to ``in_channels``; any
            other value only works with :meth:`gate`.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict): Norm layer config of the strip convs. Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation between the strip sum and the 1x1 conv.
            Defaults to ``dict(type='ReLU')``.
    """

    _abbr_ = 'spm'

    def __init__(self,
                 in_channels: int,
                 out_channels: Optional[int] = None,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),  # noqa: B006 (mmcv style)
                 act_cfg: ConfigType = dict(type='ReLU')) -> None:  # noqa: B006 (mmcv style)
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.strip_pool = DualStripPooling(in_channels, self.out_channels, conv_cfg, norm_cfg)
        self.conv_gate = ConvModule(
            self.out_channels,
            self.out_channels,
            1,
            conv_cfg=conv_cfg,
            norm_cfg=None,
            act_cfg=dict(type='Sigmoid'))
        self.act = build_activation_layer(act_cfg) if act_cfg else nn.Identity()

    def gate(self, x: Tensor) -> Tensor:
        """The sigmoid gate, (B, C_in, H, W) -> (B, C_out, H, W)."""
        return self.conv_gate(self.act(self.strip_pool(x)))

    def forward(self, x: Tensor) -> Tensor:
        """The gated feature ``x * gate(x)``, same shape as ``x``."""
        if self.out_channels != self.in_channels:
            raise ValueError(
                f'SPM.forward multiplies the input by the gate, so out_channels '
                f'({self.out_channels}) must equal in_channels ({self.in_channels}); leave '
                'out_channels=None, or call SPM.gate() to get the gate alone.')
        return x * self.gate(x)
