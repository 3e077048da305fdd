# Copyright (c) mmaffseg contributors. All rights reserved.
"""ResNet-38 ("model A1"), the wide pre-activation ResNet used by PSA / AffinityNet.

Wu, Shen & van den Hengel, "Wider or Deeper: Revisiting the ResNet Model for Visual
Recognition", Pattern Recognition 2019 (arXiv 2016). Used at output stride 8 by Ahn & Kwak,
"Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly Supervised
Semantic Segmentation", CVPR 2018.

Layout (output channels, output stride):

- stem: 3x3 conv 3 -> 64 (64, /1);
- layer1: 3 basic blocks, the first with stride 2 (128, /2);
- layer2: 3 basic blocks, the first with stride 2 (256, /4);
- layer3: 6 basic blocks, the first with stride 2 (512, /8);
- layer4: 3 basic blocks with 512 middle channels, dilation 2 (the very first conv: 1)
  (1024, /8);
- layer5: 1 bottleneck block, dilation 4, dropout 0.3 (2048, /8);
- layer6: 1 bottleneck block, dilation 4, dropout 0.5 (4096, /8), then ``final_norm``.

Blocks are pre-activation: every block starts with BN + ReLU of its input, so the activated
output of stage i is computed by the first block of stage i + 1 (and by ``final_norm`` for the
last stage). The backbone returns these activated maps; with the default
``out_indices=(2, 3, 5)`` they are the 512-, 1024- and 4096-channel maps that AffinityNet reads
(the reference's ``conv4``, ``conv5``, ``conv6``); the last one is also the CAM feature.
"""
from typing import Optional, Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor


class PreActBasicBlock(BaseModule):
    """Pre-activation block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus a shortcut.

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Channels after the first conv.
        out_channels (int): Output channels.
        stride (int): Stride of the first conv (and of the projection shortcut).
        dilation (int): Dilation of the second conv.
        first_dilation (int, optional): Dilation of the first conv; ``dilation`` when None.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 mid_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 dilation: int = 1,
                 first_dilation: Optional[int] = None,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),  # noqa: B006
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg)
        first_dilation = dilation if first_dilation is None else first_dilation
        self.norm1 = build_norm_layer(norm_cfg, in_channels)[1]
        self.conv1 = build_conv_layer(conv_cfg, in_channels, mid_channels, 3, stride,
                                      padding=first_dilation, dilation=first_dilation, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, mid_channels)[1]
        self.conv2 = build_conv_layer(conv_cfg, mid_channels, out_channels, 3,
                                      padding=dilation, dilation=dilation, bias=False)
        self.downsample = None
        if in_channels != out_channels or stride != 1:
            self.downsample = build_conv_layer(conv_cfg, in_channels, out_channels, 1, stride,
                                               bias=False)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Return the block output and its activated input ``relu(norm1(x))``."""
        x_act = F.relu(self.norm1(x))
        shortcut = x if self.downsample is None else self.downsample(x_act)
        out = self.conv2(F.relu(self.norm2(self.conv1(x_act))))
        return shortcut + out, x_act


class PreActBottleneck(BaseModule):
    """Pre-activation bottleneck: BN-ReLU-conv1x1 (C/4) -BN-ReLU-conv3x3 (C/2) -BN-ReLU-conv1x1.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels ``C``.
        dilation (int): Dilation of the 3x3 conv.
        dropout (float): Channel dropout (Dropout2d) before the 3x3 and the last 1x1 conv.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict): Norm layer config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 dilation: int = 1,
                 dropout: float = 0.,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),  # noqa: B006
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg)
        quarter, half = out_channels // 4, out_channels // 2
        self.norm1 = build_norm_layer(norm_cfg, in_channels)[1]
        self.conv1 = build_conv_layer(conv_cfg, in_channels, quarter, 1, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, quarter)[1]
        self.conv2 = build_conv_layer(conv_cfg, quarter, half, 3, padding=dilation,
                                      dilation=dilation, bias=False)
        self.norm3 = build_norm_layer(norm_cfg, half)[1]
        self.conv3 = build_conv_layer(conv_cfg, half, out_channels, 1, bias=False)
        self.downsample = build_conv_layer(conv_cfg, in_channels, out_channels, 1, bias=False)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """Return the block output and its activated input ``relu(norm1(x))``."""
        x_act = F.relu(self.norm1(x))
        out = self.conv1(x_act)
        out = self.conv2(self.dropout(F.relu(self.norm2(out))))
        out = self.conv3(self.dropout(F.relu(self.norm3(out))))
        return self.downsample(x_act) + out, x_act


@MODELS.register_module()
class ResNet38(BaseModule):
    """ResNet-38 (Wu et al. model A1) at output stride 8, as in PSA.

    Args:
        in_channels (int): Image channels. Default: 3.
        out_indices (Sequence[int]): Which activated stage outputs to return, 0..5 for
            layer1..layer6 (128, 256, 512, 1024, 2048, 4096 channels). Default: (2, 3, 5),
            the three maps AffinityNet reads; the last is the CAM feature.
        frozen_stages (int): Stages whose weights are frozen: -1 none, 0 the stem, i >= 1 the
            stem and layer1..layer_i. PSA freezes the stem and layer1 (1). Default: -1.
        norm_eval (bool): Keep the norm layers in eval mode during training (PSA does, with
            ``norm_cfg=dict(type='BN', requires_grad=False)``). Default: False.
        dropouts (tuple[float, float]): Dropout of the layer5 and layer6 bottlenecks.
            Default: (0.3, 0.5).
        conv_cfg (dict, optional): Conv layer config. Default: None.
        norm_cfg (dict): Norm layer config (e.g. ``dict(type='SyncBN')``). Default: BN.
        init_cfg (dict, optional): Initialisation config, e.g. ``dict(type='Pretrained',
            checkpoint=..., prefix='backbone.')`` for a converted checkpoint.
    """

    num_levels = 6

    def __init__(self,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, 3, 5),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 dropouts: Tuple[float, float] = (0.3, 0.5),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),  # noqa: B006
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg)
        bad = [i for i in out_indices if not 0 <= i < self.num_levels]
        if bad:
            raise ValueError(f'out_indices must lie in 0..{self.num_levels - 1} (layer1..layer6),'
                             f' got {tuple(out_indices)}')
        if not -1 <= frozen_stages <= self.num_levels:
            raise ValueError(f'frozen_stages must lie in -1..{self.num_levels}, '
                             f'got {frozen_stages}')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)

        def basic_stage(cin, mid, cout, num_blocks, stride=1, dilation=1, first_dilation=None):
            blocks = [PreActBasicBlock(cin, mid, cout, stride, dilation, first_dilation, **cfg)]
            blocks += [PreActBasicBlock(cout, mid, cout, 1, dilation, **cfg)
                       for _ in range(num_blocks - 1)]
            return nn.Sequential(*blocks)

        self.stem = build_conv_layer(conv_cfg, in_channels, 64, 3, padding=1, bias=False)
        self.layer1 = basic_stage(64, 128, 128, 3, stride=2)
        self.layer2 = basic_stage(128, 256, 256, 3, stride=2)
        self.layer3 = basic_stage(256, 512, 512, 6, stride=2)
        self.layer4 = basic_stage(512, 512, 1024, 3, dilation=2, first_dilation=1)
        self.layer5 = nn.Sequential(PreActBottleneck(1024, 2048, 4, dropouts[0], **cfg))
        self.layer6 = nn.Sequential(PreActBottleneck(2048, 4096, 4, dropouts[1], **cfg))
        self.final_norm = build_norm_layer(norm_cfg, 4096)[1]
        self._freeze_stages()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> the activated stage outputs listed in ``out_indices``."""
        levels = {}
        x = self.stem(x)
        for i in range(self.num_levels):
            for j, block in enumerate(getattr(self, f'layer{i + 1}')):
                x, x_act = block(x)
                if j == 0 and i > 0:
                    levels[i - 1] = x_act  # the previous stage's output, activated
        levels[self.num_levels - 1] = F.relu(self.final_norm(x))
        return tuple(levels[i] for i in self.out_indices)

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        stages = [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]
        for module in [self.stem] + stages:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        """Set train mode, keeping frozen stages and (with ``norm_eval``) norms in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._NormBase):
                    m.eval()
        return self

