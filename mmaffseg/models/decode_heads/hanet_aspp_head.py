# Copyright (c) mmaffseg contributors. All rights reserved.
"""DeepLabV3+ head with HANet at the four places of the official HANet model.

Reference:
    Sungha Choi, Joanne T. Kim, Jaegul Choo. "Cars Can't Fly up in the Sky: Improving
    Urban-Scene Segmentation via Height-driven Attention Networks". CVPR 2020.

The official HANet DeepLabV3+ (``DeepR101V3PlusD_HANet_OS8``) differs from mmseg's
``DepthwiseSeparableASPPHead``: plain (not separable) ASPP, a 1x1 projection of the 1280-channel
ASPP concatenation (image pooling first, then 1x1 and the atrous rates), and two plain 3x3 convs
on ``cat[low-level 48 ch, upsampled 256 ch]`` (low-level first). HANet modules sit at (lower map
-> map it re-weights):

==============  ====================================  =============================
placement       lower-level map                       re-weighted map
==============  ====================================  =============================
``layer4``      backbone stage 3 (layer3, 1024 ch)    backbone stage 4 (2048 ch)
``aspp``        layer4 (after its HANet)              ASPP concatenation (1280 ch)
``bottleneck``  ASPP concatenation (after HANet)      1x1 projection (256 ch)
``decoder``     decoder input concatenation (304 ch)  decoder output (256 ch)
==============  ====================================  =============================

Row positions come from the metainfo in :meth:`loss` / :meth:`predict`
(see :mod:`mmaffseg.ops.row_positions`).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.aspp_head import ASPPHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from ...ops.row_positions import batch_row_positions
from ..layers.hanet import HANet

HANET_PLACEMENTS = ('layer4', 'aspp', 'bottleneck', 'decoder')


@MODELS.register_module()
class HANetASPPHead(ASPPHead):
    """DeepLabV3+ decode head of the official HANet model.

    Takes the backbone's stage outputs (``input_transform=None``; ``in_index`` selects the last
    stage, ``c1_index`` and ``lower_index`` the low-level and HANet inputs).

    Args:
        c1_in_channels (int): Channels of the low-level (stage 1) map. Default: 256.
        c1_channels (int): Channels of its 1x1 projection. Default: 48.
        c1_index (int): Index of the low-level map in the backbone outputs. Default: 0.
        lower_in_channels (int): Channels of the map before ``in_index`` that drives the
            ``layer4`` HANet (layer3). Default: 1024.
        lower_index (int): Its index in the backbone outputs. Default: 2.
        hanet_placements (Sequence[str]): Which of ``'layer4'``, ``'aspp'``,
            ``'bottleneck'``, ``'decoder'`` get a HANet. Default: all four (official).
        hanet_cfg (dict, optional): Keyword arguments of every :class:`HANet` (``reduction``,
            ``pos_rfactor``, ``pos_noise``...); ``norm_cfg``/``act_cfg`` default to the head's.
            Default: None (HANet's defaults: r=64, kernel 3, three convs).
        dilations (Sequence[int]): ASPP dilations; 1 gives the 1x1 branch.
            Default: (1, 12, 24, 36) (official rates at output stride 8).
        **kwargs: :class:`~mmseg.models.decode_heads.BaseDecodeHead` arguments
            (``in_channels``, ``channels``, ``num_classes``, ``norm_cfg``, ``align_corners``
            (True in the official model)...).
    """

    # tells HANetEncoderDecoder._forward to pass the row positions to forward()
    uses_row_positions = True

    def __init__(self,
                 c1_in_channels: int = 256,
                 c1_channels: int = 48,
                 c1_index: int = 0,
                 lower_in_channels: int = 1024,
                 lower_index: int = 2,
                 hanet_placements: Sequence[str] = HANET_PLACEMENTS,
                 hanet_cfg: Optional[dict] = None,
                 dilations: Sequence[int] = (1, 12, 24, 36),
                 **kwargs) -> None:
        super().__init__(dilations=dilations, **kwargs)
        unknown = set(hanet_placements) - set(HANET_PLACEMENTS)
        if unknown:
            raise ValueError(f'unknown hanet_placements {sorted(unknown)}; choose from '
                             f'{HANET_PLACEMENTS}')
        self.c1_index = c1_index
        self.lower_index = lower_index
        self.hanet_placements = tuple(p for p in HANET_PLACEMENTS if p in hanet_placements)
        conv_kw = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        aspp_channels = (len(dilations) + 1) * self.channels
        # the official projection of the ASPP concatenation is 1x1 (mmseg's ASPPHead uses 3x3)
        self.bottleneck = ConvModule(aspp_channels, self.channels, 1, **conv_kw)
        self.c1_bottleneck = ConvModule(c1_in_channels, c1_channels, 1, **conv_kw)
        decoder_in = c1_channels + self.channels
        self.decoder = nn.Sequential(
            ConvModule(decoder_in, self.channels, 3, padding=1, **conv_kw),
            ConvModule(self.channels, self.channels, 3, padding=1, **conv_kw))

        hanet_cfg = dict(dict(norm_cfg=self.norm_cfg, act_cfg=self.act_cfg), **(hanet_cfg or {}))
        channels = dict(layer4=(lower_in_channels, self.in_channels),
                        aspp=(self.in_channels, aspp_channels),
                        bottleneck=(aspp_channels, self.channels),
                        decoder=(decoder_in, self.channels))
        for placement in self.hanet_placements:
            lower, higher = channels[placement]
            setattr(self, f'hanet_{placement}', HANet(lower, higher, **hanet_cfg))

    def _hanet(self, placement: str, lower: Tensor, x: Tensor,
               row_positions: Optional[Tensor]) -> Tensor:
        if placement not in self.hanet_placements:
            return x
        return getattr(self, f'hanet_{placement}')(lower, x, row_positions)

    def _forward_feature(self,
                         inputs: Sequence[Tensor],
                         row_positions: Optional[Tensor] = None) -> Tensor:
        """Decoder output before the classifier, ``(B, channels, H/4, W/4)``.

        Args:
            inputs (Sequence[Tensor]): Backbone stage outputs.
            row_positions (Tensor | None): Row bins of the network input rows, ``(B, H)``.
        """
        x = self._transform_inputs(inputs)  # layer4, (B, 2048, H/8, W/8)
        x = self._hanet('layer4', inputs[self.lower_index], x, row_positions)
        aspp = [resize(self.image_pool(x), size=x.shape[2:], mode='bilinear',
                       align_corners=self.align_corners)]
        aspp = torch.cat(aspp + self.aspp_modules(x), dim=1)  # (B, 1280, H/8, W/8)
        aspp = self._hanet('aspp', x, aspp, row_positions)
        feat = self._hanet('bottleneck', aspp, self.bottleneck(aspp), row_positions)
        c1 = self.c1_bottleneck(inputs[self.c1_index])  # (B, 48, H/4, W/4)
        feat = resize(feat, size=c1.shape[2:], mode='bilinear', align_corners=self.align_corners)
        decoder_in = torch.cat([c1, feat], dim=1)  # low-level first, as the official model
        return self._hanet('decoder', decoder_in, self.decoder(decoder_in), row_positions)

    def forward(self,
                inputs: Sequence[Tensor],
                row_positions: Optional[Tensor] = None) -> Tensor:
        """Segmentation logits at 1/4 of the input.

        Args:
            inputs (Sequence[Tensor]): Backbone stage outputs.
            row_positions (Tensor | None): Row bins of the network input rows, ``(B, H)``;
                ``None`` falls back to crop-relative rows (one-time warning).

        Returns:
            Tensor: ``(B, num_classes, H/4, W/4)``.
        """
        return self.cls_seg(self._forward_feature(inputs, row_positions))

    def loss(self, inputs: Tuple[Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType) -> dict:
        """Losses, with the row positions of each crop taken from its metainfo.

        Args:
            inputs (tuple[Tensor]): Backbone stage outputs.
            batch_data_samples (list[SegDataSample]): Samples with ``gt_sem_seg`` and the
                metainfo of :mod:`~mmaffseg.ops.row_positions`.
            train_cfg (dict): Training config (unused).

        Returns:
            dict[str, Tensor]: The losses.
        """
        metas = [sample.metainfo for sample in batch_data_samples]
        seg_logits = self.forward(inputs, batch_row_positions(metas, device=inputs[0].device))
        return self.loss_by_feat(seg_logits, batch_data_samples)

    def predict(self, inputs: Tuple[Tensor], batch_img_metas: List[dict],
                test_cfg: ConfigType) -> Tensor:
        """Logits resized to the input, with row positions from the metainfo.

        Args:
            inputs (tuple[Tensor]): Backbone stage outputs.
            batch_img_metas (list[dict]): Metainfo of each sample (a sliding window of
                :class:`~mmaffseg.models.segmentors.HANetEncoderDecoder` carries its own
                ``row_positions``).
            test_cfg (dict): Test config (unused).

        Returns:
            Tensor: ``(B, num_classes, H, W)`` logits.
        """
        row_positions = batch_row_positions(batch_img_metas, device=inputs[0].device)
        seg_logits = self.forward(inputs, row_positions)
        return self.predict_by_feat(seg_logits, batch_img_metas)
