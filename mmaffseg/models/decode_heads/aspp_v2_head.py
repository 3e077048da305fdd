# Copyright (c) mmaffseg contributors. All rights reserved.
"""DeepLab v2 atrous spatial pyramid pooling (ASPP) head: parallel atrous classifiers, summed.

Chen, L.-C., Papandreou, G., Kokkinos, I., Murphy, K. and Yuille, A. L. "DeepLab: Semantic Image
Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs".
TPAMI 2018 (arXiv 1606.00915, 2016).

Unlike v3's ASPP (mmseg's ``ASPPHead``: 1x1 + 3x3 branches + image pooling, concatenated, BN, then
one classifier), v2's branches each end in **class scores** and the scores are **summed**:

* ResNet-101 (the default, ``fc_branches=False``): each branch is one 3x3 conv with dilation
  r in (6, 12, 18, 24) from the backbone features straight to the classes, with bias; no norm,
  no dropout.
* VGG-16 "ASPP-L" (``fc_branches=True``): each branch is fc6 (3x3, dilation r, ``channels``
  wide) -> ReLU -> dropout -> fc7 (1x1) -> ReLU -> dropout -> fc8 (1x1 to the classes).

``conv_seg`` is the ModuleList of the per-branch classifiers, so mmseg's default
``Normal(std=0.01)`` init of ``conv_seg`` covers all of them.
"""
from typing import List, Sequence

import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor

from ..layers.atrous_fc import AtrousFC


@MODELS.register_module()
class ASPPV2Head(BaseDecodeHead):
    """DeepLab v2 ASPP: one atrous classifier per rate, logits summed.

    Args:
        dilations (Sequence[int]): Atrous rates of the branches. Defaults to (6, 12, 18, 24).
        fc_branches (bool): False (default): each branch is a single 3x3 atrous conv to the
            classes (DeepLab v2 ResNet-101; ``channels`` is then unused). True: each branch is
            the VGG-16 ASPP-L branch fc6 (3x3 atrous, ``channels``) -> fc7 (1x1) -> fc8.
        dropout_ratio (float): Element-wise dropout after fc6 and fc7 of each branch; only with
            ``fc_branches=True`` (DeepLab v2 ResNet has no dropout). Defaults to 0.
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels``, ``channels``,
            ``num_classes``, ``norm_cfg`` for the fc branches...).
    """

    def __init__(self,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 fc_branches: bool = False,
                 dropout_ratio: float = 0.0,
                 **kwargs) -> None:
        super().__init__(dropout_ratio=0, **kwargs)
        if self.input_transform is not None:
            raise ValueError('ASPPV2Head takes one feature map: leave input_transform=None '
                             f'and pick the map with in_index (got input_transform='
                             f'{self.input_transform!r})')
        if len(dilations) == 0 or any(int(d) != d or d < 1 for d in dilations):
            raise ValueError(f'ASPPV2Head: dilations must be a non-empty sequence of positive '
                             f'integers, got {dilations}')
        if dropout_ratio > 0 and not fc_branches:
            raise ValueError(f'ASPPV2Head: dropout_ratio={dropout_ratio} needs fc_branches=True '
                             '(DeepLab v2 ResNet branches are single convs without dropout); '
                             'set dropout_ratio=0 or fc_branches=True')
        self.dilations = tuple(int(d) for d in dilations)
        self.fc_branches = fc_branches
        self.dropout_ratio = dropout_ratio
        if fc_branches:
            self.branches = nn.ModuleList(
                AtrousFC(self.in_channels, self.channels, d, dropout_ratio,
                         conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
                for d in self.dilations)
            self.conv_seg = nn.ModuleList(
                nn.Conv2d(self.channels, self.out_channels, 1) for _ in self.dilations)
        else:
            self.branches = None
            self.conv_seg = nn.ModuleList(
                nn.Conv2d(self.in_channels, self.out_channels, 3, padding=d, dilation=d)
                for d in self.dilations)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Summed branch logits, (B, num_classes, H, W) at the input feature's size."""
        x = self._transform_inputs(inputs)
        logits = 0
        for i, classifier in enumerate(self.conv_seg):
            feat = self.branches[i](x) if self.fc_branches else x
            logits = logits + classifier(feat)
        return logits
