# Copyright (c) mmaffseg contributors. All rights reserved.
"""HANet between backbone stages, as a neck that fits any mmseg backbone.

Reference:
    Sungha Choi, Joanne T. Kim, Jaegul Choo. "Cars Can't Fly up in the Sky: Improving
    Urban-Scene Segmentation via Height-driven Attention Networks". CVPR 2020.

Each ``(lower, higher)`` pair re-weights backbone output ``higher`` row by row with gates
computed from output ``lower``, as the official model does from layer3 to layer4. The lower
map is always the backbone's own output (before any HANet), like the official ``hanet0``.
Everything else passes through unchanged, so the neck drops into an existing model::

    model = dict(type='HANetEncoderDecoder',  # feeds the absolute row positions
                 neck=dict(type='HANetNeck', in_channels=[256, 512, 1024, 2048]))
"""
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptMultiConfig
from torch import Tensor

from ..layers.hanet import HANet


@MODELS.register_module()
class HANetNeck(BaseModule):
    """HANet on pairs of backbone stage outputs.

    Args:
        in_channels (Sequence[int]): Channels of every backbone output, in order.
        pairs (Sequence[tuple[int, int]]): ``(lower, higher)`` output indices, ``lower <
            higher``; output ``higher`` is re-weighted from output ``lower``. Default:
            ``((2, 3),)`` (layer3 -> layer4, the official backbone placement).
        hanet_cfg (dict, optional): Keyword arguments of every :class:`HANet` (``reduction``,
            ``pos_rfactor``, ``pos_noise``...). Default: None (HANet's defaults).
        norm_cfg (dict): Norm of the HANet convs (2-D BN is mapped to 1-D). Default:
            ``dict(type='BN1d')``.
        init_cfg (dict | list[dict], optional): Initialisation config. Default: None.
    """

    # tells HANetEncoderDecoder to pass the row positions to forward()
    uses_row_positions = True

    def __init__(self,
                 in_channels: Sequence[int],
                 pairs: Sequence[Tuple[int, int]] = ((2, 3), ),
                 hanet_cfg: Optional[dict] = None,
                 norm_cfg: ConfigType = dict(type='BN1d'),  # noqa: B006 (mmcv style)
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = list(in_channels)
        self.pairs: List[Tuple[int, int]] = []
        for pair in pairs:
            if len(pair) != 2:
                raise ValueError(f'each HANetNeck pair must be (lower, higher), got {pair!r}')
            lower, higher = (int(i) for i in pair)
            if not 0 <= lower < higher < len(self.in_channels):
                raise ValueError(
                    f'HANetNeck pair {tuple(pair)} must satisfy 0 <= lower < higher < '
                    f'{len(self.in_channels)} (the number of backbone outputs given in '
                    f'in_channels={self.in_channels})')
            self.pairs.append((lower, higher))
        hanet_cfg = dict(dict(norm_cfg=norm_cfg), **(hanet_cfg or {}))
        self.hanets = nn.ModuleList(
            HANet(self.in_channels[lower], self.in_channels[higher], **hanet_cfg)
            for lower, higher in self.pairs)

    def forward(self,
                inputs: Sequence[Tensor],
                row_positions: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """Re-weight the selected outputs.

        Args:
            inputs (Sequence[Tensor]): Backbone outputs.
            row_positions (Tensor | None): Row bins of the network input rows, ``(B, H)``;
                ``None`` falls back to crop-relative rows (one-time warning).

        Returns:
            tuple[Tensor]: The outputs, the paired ones re-weighted.
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'HANetNeck was built for {len(self.in_channels)} backbone outputs '
                             f'(in_channels={self.in_channels}) but got {len(inputs)}')
        outs = list(inputs)
        for (lower, higher), hanet in zip(self.pairs, self.hanets):
            outs[higher] = hanet(inputs[lower], outs[higher], row_positions)
        return tuple(outs)
