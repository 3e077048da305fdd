# Copyright (c) mmaffseg contributors. All rights reserved.
"""DeepLab's "fc6 / fc7" block: VGG-16's fully connected layers turned into atrous convolutions.

Chen, L.-C., Papandreou, G., Kokkinos, I., Murphy, K. and Yuille, A. L. "Semantic Image
Segmentation with Deep Convolutional Nets and Fully Connected CRFs". ICLR 2015 (DeepLab v1,
the "LargeFOV" variant), and "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets,
Atrous Convolution, and Fully Connected CRFs". TPAMI 2018 (DeepLab v2, the VGG-16 "ASPP-L"
branches).

One block is ``fc6`` (3x3 atrous conv, ``channels`` wide) -> ReLU -> dropout -> ``fc7`` (1x1 conv)
-> ReLU -> dropout; the classifier ``fc8`` (1x1 to the classes) belongs to the head. DeepLab v1
LargeFOV uses one block with rate 12 and 1024 channels; DeepLab v2's VGG ASPP-L uses four, rates
6 / 12 / 18 / 24. Both heads build it from here.
"""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class AtrousFC(nn.Module):
    """``fc6`` (3x3, dilation ``dilation``) and ``fc7`` (1x1), each followed by dropout.

    The dropout is element-wise (``nn.Dropout``), as DeepLab's Caffe ``Dropout`` layers.

    Args:
        in_channels (int): Input channels (512 for VGG-16 conv5).
        channels (int): Width of fc6 and fc7 (1024 in DeepLab-LargeFOV and ASPP-L).
        dilation (int): Dilation (atrous rate) of the 3x3 fc6; padding keeps the size.
        dropout_ratio (float): Dropout probability after fc6 and after fc7. Defaults to 0.5.
        conv_cfg (dict, optional): Conv layer config. Defaults to None (Conv2d).
        norm_cfg (dict, optional): Norm layer config; DeepLab has none. Defaults to None.
        act_cfg (dict, optional): Activation config. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 dilation: int,
                 dropout_ratio: float = 0.5,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = dict(type='ReLU')  # noqa: B006 (mmcv style)
                 ) -> None:
        super().__init__()
        if int(dilation) != dilation or dilation < 1:
            raise ValueError(f'AtrousFC: dilation must be a positive integer, got {dilation}')
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f'AtrousFC: dropout_ratio must be in [0, 1), got {dropout_ratio}')
        self.fc6 = ConvModule(in_channels, channels, 3, padding=dilation, dilation=dilation,
                              conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.fc7 = ConvModule(channels, channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                              act_cfg=act_cfg)
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        # (B, Cin, H, W) -> (B, channels, H, W)
        return self.dropout(self.fc7(self.dropout(self.fc6(x))))
