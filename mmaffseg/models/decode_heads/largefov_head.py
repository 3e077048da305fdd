# Copyright (c) mmaffseg contributors. All rights reserved.
"""DeepLab v1 "LargeFOV" head.

Chen, L.-C., Papandreou, G., Kokkinos, I., Murphy, K. and Yuille, A. L. "Semantic Image
Segmentation with Deep Convolutional Nets and Fully Connected CRFs". ICLR 2015.

On the atrous VGG-16 (:class:`~mmaffseg.models.backbones.VGGAtrous`, output stride 8):
fc6 = 3x3 conv, dilation 12, 1024 channels -> ReLU -> dropout -> fc7 = 1x1 conv 1024 -> ReLU ->
dropout -> fc8 = 1x1 conv to the classes. The logits stay at stride 8; mmseg upsamples them
bilinearly for the loss and the prediction, and DeepLab then refines the upsampled
probabilities with the dense CRF (:class:`~mmaffseg.models.segmentors.CRFRefineSegmentor`).
"""
from typing import List

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor

from ..layers.atrous_fc import AtrousFC


@MODELS.register_module()
class LargeFOVHead(BaseDecodeHead):
    """DeepLab v1 LargeFOV head (fc6 atrous 3x3, fc7 1x1, fc8 classifier).

    ``dropout_ratio`` is DeepLab's element-wise dropout after fc6 and after fc7; it replaces
    mmseg's usual ``Dropout2d`` before ``conv_seg`` (``conv_seg`` is fc8).

    Args:
        dilation (int): Atrous rate of fc6. Defaults to 12.
        dropout_ratio (float): Dropout after fc6 and fc7. Defaults to 0.5.
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels``: 512 on VGG-16,
            ``channels``: fc6/fc7 width, 1024 in the paper, ``num_classes``, ``norm_cfg``...).
    """

    def __init__(self, dilation: int = 12, dropout_ratio: float = 0.5, **kwargs) -> None:
        super().__init__(dropout_ratio=0, **kwargs)
        if self.input_transform is not None:
            raise ValueError('LargeFOVHead takes one feature map: leave input_transform=None '
                             f'and pick the map with in_index (got input_transform='
                             f'{self.input_transform!r})')
        self.dropout_ratio = dropout_ratio
        self.fc = AtrousFC(self.in_channels, self.channels, dilation, dropout_ratio,
                           conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        """fc7 features, (B, channels, H/8, W/8)."""
        return self.fc(self._transform_inputs(inputs))

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Logits (B, num_classes, H/8, W/8)."""
        return self.cls_seg(self._forward_feature(inputs))
