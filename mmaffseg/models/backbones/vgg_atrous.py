# Copyright (c) mmaffseg contributors. All rights reserved.
"""Atrous VGG (DeepLab v1 / v2 VGG-16 backbone, output stride 8).

Chen, L.-C., Papandreou, G., Kokkinos, I., Murphy, K. and Yuille, A. L. "Semantic Image
Segmentation with Deep Convolutional Nets and Fully Connected CRFs". ICLR 2015.
Simonyan, K. and Zisserman, A. "Very Deep Convolutional Networks for Large-Scale Image
Recognition". ICLR 2015 (the VGG network).

DeepLab's VGG-16 as in its LargeFOV prototxt:

* five stages of 3x3 convs (64, 128, 256, 512, 512 channels; 2, 2, 3, 3, 3 convs), ReLU, no norm;
* every stage ends in a 3x3 max pool with padding 1 (VGG's were 2x2); pool1-3 have stride 2,
  **pool4 and pool5 stride 1**, so the output stride is 8;
* the conv5 convs are **atrous with dilation 2** to keep conv5's field of view after removing
  pool4's subsampling;
* after pool5, a 3x3 stride-1 average pool ("pool5a", ``avg_pool5``).

The fully connected layers fc6 / fc7 (turned into atrous convs) are part of the heads
(:class:`~mmaffseg.models.decode_heads.LargeFOVHead`,
:class:`~mmaffseg.models.decode_heads.ASPPV2Head`).

Output sizes: each stride-2 pool maps n -> ceil(n / 2) (PyTorch floor mode with padding 1),
so an H x W input gives ceil(ceil(ceil(H/2)/2)/2) = ceil(H / 8) rows at stride 8. Caffe's ceil
mode pooling differs by one row for even sizes; DeepLab used odd crops (321, 513), where the two
agree.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

#: Number of 3x3 convs in each of the five stages.
VGG_ARCH: Dict[int, Tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
#: Stage widths of VGG at ``base_channels=64``, relative to ``base_channels``.
STAGE_WIDTH_MULT = (1, 2, 4, 8, 8)


@MODELS.register_module()
class VGGAtrous(BaseModule):
    """VGG with DeepLab's atrous conv5 and stride-1 pool4 / pool5 (OS8).

    Layer names follow the paper: ``stages[s][j]`` is conv{s+1}_{j+1} (a ConvModule), the last
    entry of each stage is its pool. Use ``base_channels`` < 64 only for quick experiments.

    Args:
        depth (int): VGG depth, one of 11, 13, 16, 19. Defaults to 16.
        in_channels (int): Image channels. Defaults to 3.
        base_channels (int): Width of stage 1 (VGG: 64); stages are 1, 2, 4, 8, 8 times it.
            Defaults to 64.
        strides (Sequence[int]): Stride of the max pool closing each stage. Defaults to
            (2, 2, 2, 1, 1) (DeepLab: output stride 8).
        dilations (Sequence[int]): Dilation of the convs of each stage. Defaults to
            (1, 1, 1, 1, 2).
        out_indices (Sequence[int]): Stages (0-4) whose pooled outputs are returned. Defaults
            to (4,), conv5 after pool5 (and pool5a).
        avg_pool5 (bool): Add DeepLab-LargeFOV's 3x3 stride-1 average pool after pool5.
            Defaults to True.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict, optional): Norm layer config; VGG has none. Defaults to None.
        act_cfg (dict, optional): Activation config. Defaults to ``dict(type='ReLU')``.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to Kaiming for
            the convs (as mmcv's VGG).
    """

    def __init__(self,
                 depth: int = 16,
                 in_channels: int = 3,
                 base_channels: int = 64,
                 strides: Sequence[int] = (2, 2, 2, 1, 1),
                 dilations: Sequence[int] = (1, 1, 1, 1, 2),
                 out_indices: Sequence[int] = (4, ),
                 avg_pool5: bool = True,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = dict(type='ReLU'),  # noqa: B006 (mmcv style)
                 init_cfg: Optional[dict] = dict(type='Kaiming', layer='Conv2d')  # noqa: B006
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth not in VGG_ARCH:
            raise ValueError(f'VGGAtrous: depth must be one of {sorted(VGG_ARCH)}, got {depth}')
        num_stages = len(VGG_ARCH[depth])
        for name, values in (('strides', strides), ('dilations', dilations)):
            if len(values) != num_stages or any(int(v) != v or v < 1 for v in values):
                raise ValueError(f'VGGAtrous: {name} must be {num_stages} positive integers '
                                 f'(one per stage), got {tuple(values)}')
        if (len(out_indices) == 0 or len(set(out_indices)) != len(out_indices)
                or any(i not in range(num_stages) for i in out_indices)):
            raise ValueError(f'VGGAtrous: out_indices must be distinct stage indices in '
                             f'0..{num_stages - 1}, got {tuple(out_indices)}')
        self.depth = depth
        self.strides = tuple(strides)
        self.dilations = tuple(dilations)
        self.out_indices = tuple(sorted(out_indices))
        self.out_channels = [base_channels * m for m in STAGE_WIDTH_MULT]

        self.stages = nn.ModuleList()
        channels = in_channels
        for s, num_convs in enumerate(VGG_ARCH[depth]):
            layers = []
            for _ in range(num_convs):
                d = self.dilations[s]
                layers.append(
                    ConvModule(channels, self.out_channels[s], 3, padding=d, dilation=d,
                               conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg))
                channels = self.out_channels[s]
            layers.append(nn.MaxPool2d(3, stride=self.strides[s], padding=1))
            if s == num_stages - 1 and avg_pool5:
                layers.append(nn.AvgPool2d(3, stride=1, padding=1))
            self.stages.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> the ``out_indices`` stage outputs; stage 4 is (B, 512, ceil(H/8),
        ceil(W/8)) with the default strides."""
        if x.dim() != 4:
            raise ValueError(f'VGGAtrous expects a (B, C, H, W) batch, got shape '
                             f'{tuple(x.shape)}')
        outs = []
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s in self.out_indices:
                outs.append(x)
            if s == self.out_indices[-1]:
                break
        return tuple(outs)
