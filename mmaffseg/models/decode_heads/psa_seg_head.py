# Copyright (c) mmaffseg contributors. All rights reserved.
"""The segmentation head PSA trains on its pseudo labels (second stage).

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018: the final segmentation model is ResNet-38 with two
atrous (dilation 12) 3x3 convolutions on top: backbone features -> 3x3 conv (dilation 12, 512
channels) -> ReLU -> dropout -> 3x3 conv (dilation 12) to the classes. The logits stay at the
backbone stride (8); mmseg upsamples them for the loss and the prediction.
"""
from typing import List

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class PSASegHead(BaseDecodeHead):
    """Two dilated 3x3 convs: ``in_channels`` -> ``channels`` -> classes.

    Unlike mmseg's ``FCNHead`` the classifier (``conv_seg``) is itself a dilated 3x3 conv.

    Args:
        dilation (int): Dilation (and padding) of both convs. Default: 12.
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels``: 4096 on ResNet-38,
            ``channels``: 512 in PSA, ``num_classes``, ``dropout_ratio``, ``norm_cfg`` (None in
            PSA: the first conv has a bias), ``act_cfg``...).
    """

    def __init__(self, dilation: int = 12, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.input_transform is not None:
            raise ValueError('PSASegHead takes one feature map: leave input_transform=None and '
                             f'pick the map with in_index (got {self.input_transform!r})')
        self.dilation = dilation
        self.conv = ConvModule(self.in_channels, self.channels, 3, padding=dilation,
                               dilation=dilation, conv_cfg=self.conv_cfg,
                               norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.conv_seg = nn.Conv2d(self.channels, self.out_channels, 3, padding=dilation,
                                  dilation=dilation)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Backbone outputs -> logits ``(B, num_classes, h, w)`` at the feature stride."""
        return self.cls_seg(self.conv(self._transform_inputs(inputs)))
