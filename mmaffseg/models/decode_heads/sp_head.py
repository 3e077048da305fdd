# Copyright (c) mmaffseg contributors. All rights reserved.
"""SPNet decode head: two mixed pooling modules between a 1x1 reduction and a 3x3 conv.

Paper: Qibin Hou, Li Zhang, Ming-Ming Cheng, Jiashi Feng, "Strip Pooling: Rethinking Spatial
Pooling for Scene Parsing", CVPR 2020.

Official head (2048 input channels): 1x1 conv 2048 -> 1024 + BN + ReLU, MPM(1024, (20, 12)),
MPM(1024, (20, 12)), 3x3 conv 1024 -> 512 + BN + ReLU, Dropout2d(0.1), 1x1 conv to the classes.
The logits stay at the feature resolution; the official network upsamples them bilinearly with
``align_corners=True``, so configs set ``align_corners=True``.
"""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor

from ..layers.mixed_pooling import MPM


@MODELS.register_module()
class SPHead(BaseDecodeHead):
    """Strip pooling head of SPNet.

    ``conv_seg`` (the classifier) sees ``channels`` channels, 512 in the official head
    (``in_channels // 4``).

    Args:
        mid_channels (int, optional): Channels of the reduction and of the mixed pooling
            modules. Defaults to ``in_channels // 2`` (official).
        pool_sizes (Sequence[int]): Square pool sizes of each MPM's short-range branch.
            Defaults to (20, 12).
        num_mpms (int): Number of mixed pooling modules in series. Defaults to 2.
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels``, ``channels``,
            ``num_classes``, ``norm_cfg``, ``align_corners`` - also used by the MPMs' upsampling
            - ...).
    """

    def __init__(self,
                 mid_channels: Optional[int] = None,
                 pool_sizes: Sequence[int] = (20, 12),
                 num_mpms: int = 2,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(self.in_channels, int):
            raise ValueError('SPHead takes one feature map: leave input_transform=None and pick '
                             f'it with in_index (got in_channels={self.in_channels}).')
        self.mid_channels = mid_channels or self.in_channels // 2
        common = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.reduce = ConvModule(self.in_channels, self.mid_channels, 1, bias=False, **common)
        self.mpms = nn.Sequential(*(MPM(self.mid_channels, pool_sizes, self.align_corners,
                                        **common) for _ in range(num_mpms)))
        self.bottleneck = ConvModule(
            self.mid_channels, self.channels, 3, padding=1, bias=False, **common)

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        """Features before the classifier, (B, channels, H, W)."""
        x = self._transform_inputs(inputs)
        return self.bottleneck(self.mpms(self.reduce(x)))

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Logits (B, num_classes, H, W), at the input feature resolution."""
        return self.cls_seg(self._forward_feature(inputs))
