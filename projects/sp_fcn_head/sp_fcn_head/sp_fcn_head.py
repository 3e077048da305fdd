# Copyright (c) mmaffseg contributors. All rights reserved.
"""FCN decode head with strip pooling gates between its convolutions (experimental).

Strip pooling: Hou, Zhang, Cheng and Feng, "Strip Pooling: Rethinking Spatial Pooling for Scene
Parsing", CVPR 2020. SPNet puts its strip pooling module (SPM) inside the backbone's bottlenecks
and the mixed pooling module in the head. This project asks what the SPM alone buys in the
decoder: an mmseg ``FCNHead`` whose every convolution is followed by an SPM gate
``x * sigmoid(conv(ReLU(strip_h(x) + strip_w(x))))``, so the head sees whole rows and columns
at the cost of two strip convolutions per layer, on an unchanged backbone.
"""
import torch.nn as nn
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS

from mmaffseg.models.layers import SPM


@MODELS.register_module()
class SPFCNHead(FCNHead):
    """``FCNHead`` with an :class:`~mmaffseg.models.layers.SPM` after every convolution.

    Args:
        num_convs (int): Convolutions of the head, each followed by an SPM. Defaults to 2.
        **kwargs: The remaining ``FCNHead`` arguments (``in_channels``, ``channels``,
            ``num_classes``, ``concat_input``, ``norm_cfg``...).
    """

    def __init__(self, num_convs: int = 2, **kwargs) -> None:
        if num_convs < 1:
            raise ValueError(f'SPFCNHead needs num_convs >= 1 (an SPM follows each conv), got '
                             f'{num_convs}')
        super().__init__(num_convs=num_convs, **kwargs)
        gates = [
            SPM(self.channels, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
            for _ in range(num_convs)
        ]
        self.convs = nn.Sequential(*[
            layer for pair in zip(self.convs, gates) for layer in pair
        ])
