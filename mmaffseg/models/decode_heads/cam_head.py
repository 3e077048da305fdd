# Copyright (c) mmaffseg contributors. All rights reserved.
"""Class activation map (CAM) head: an image-level multi-label classifier.

Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016; as used by
Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

Features -> ``num_convs`` 3x3 conv(s) to ``channels`` (one 3x3 conv with 512 channels by
default; the official ResNet-38 network has none: ``num_convs=0, channels=4096``) -> dropout ->
global average pooling -> bias-free 1x1 "fc" ``conv_seg`` -> logits, trained with the
multi-label soft-margin loss (sigmoid cross-entropy averaged over classes and images). The CAM
of class c is ``ReLU(w_c . f(x, y))`` with the fc weights, at the feature stride.

Image-level labels: each data sample carries ``gt_class_labels``, a ``(num_classes,)`` multi-hot
vector in the classifier's class order, either in its metainfo (e.g. ``PackSegInputs(meta_keys=
(..., 'gt_class_labels'))``) or as a data field (``data_sample.gt_class_labels``).
"""
from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor


def stack_class_labels(batch_data_samples: SampleList, num_classes: int,
                       device: torch.device = None) -> Tensor:
    """``(B, num_classes)`` float multi-hot labels from the samples' ``gt_class_labels``."""
    labels = []
    for sample in batch_data_samples:
        value = sample.get('gt_class_labels')  # metainfo or data field
        if value is None:
            raise KeyError(
                'the data sample has no gt_class_labels (image-level multi-hot labels); add them '
                "with a transform and PackSegInputs(meta_keys=(..., 'gt_class_labels')), e.g. "
                "the dataset wrapper of mmaffseg.datasets")
        value = torch.as_tensor(np.asarray(value), dtype=torch.float32, device='cpu').flatten()
        if value.numel() != num_classes:
            raise ValueError(f'gt_class_labels must have num_classes={num_classes} entries, got '
                             f'{value.numel()}; check the head num_classes against the dataset')
        labels.append(value)
    return torch.stack(labels).to(device)


@MODELS.register_module()
class CAMHead(BaseDecodeHead):
    """CAM classification head.

    ``forward`` returns image-level logits ``(B, num_classes)``; :meth:`forward_cam` the CAMs
    ``(B, num_classes, h, w)``; ``predict`` the CAMs resized to the (padded) input size.

    Args:
        in_channels (int): Input feature channels. Default: 4096 (ResNet-38).
        channels (int): Channels of the 3x3 convs (must equal ``in_channels`` when
            ``num_convs=0``). Default: 512.
        num_convs (int): Number of 3x3 conv + norm + act layers before pooling. Default: 1.
        num_classes (int): Image-level classes (no background). Default: 20 (PASCAL VOC).
        dropout_ratio (float): Dropout2d before pooling. Default: 0.5.
        loss_decode (dict): Loss on (logits, multi-hot labels). Default: mmseg's
            ``CrossEntropyLoss(use_sigmoid=True)``, i.e. the multi-label soft-margin loss.
        init_cfg (dict): Default: Xavier-uniform fc, as the reference.
        **kwargs: Other :class:`BaseDecodeHead` arguments (``in_index``, ``norm_cfg``,
            ``act_cfg``, ``conv_cfg``, ``align_corners``...).
    """

    def __init__(self,
                 in_channels: int = 4096,
                 channels: int = 512,
                 num_convs: int = 1,
                 num_classes: int = 20,
                 dropout_ratio: float = 0.5,
                 loss_decode: ConfigType = dict(  # noqa: B006
                     type='CrossEntropyLoss', use_sigmoid=True, loss_name='loss_cls'),
                 init_cfg: ConfigType = dict(  # noqa: B006
                     type='Xavier', distribution='uniform', override=dict(name='conv_seg')),
                 **kwargs):
        if num_convs == 0 and channels != in_channels:
            raise ValueError(f'with num_convs=0 the fc reads the input directly: channels must '
                             f'equal in_channels={in_channels}, got {channels}')
        super().__init__(
            in_channels,
            channels,
            num_classes=num_classes,
            dropout_ratio=dropout_ratio,
            loss_decode=loss_decode,
            init_cfg=init_cfg,
            **kwargs)
        self.convs = nn.Sequential(*[
            ConvModule(
                in_channels if i == 0 else channels, channels, 3, padding=1,
                conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
            for i in range(num_convs)
        ])
        self.conv_seg = nn.Conv2d(channels, self.out_channels, 1, bias=False)

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        """Backbone outputs -> classifier features ``(B, channels, h, w)``."""
        return self.convs(self._transform_inputs(inputs))

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Backbone outputs -> image-level logits ``(B, num_classes)``."""
        feat = self._forward_feature(inputs)
        feat = feat if self.dropout is None else self.dropout(feat)
        return self.conv_seg(feat.mean(dim=(2, 3), keepdim=True)).flatten(1)

    def forward_cam(self, inputs: List[Tensor]) -> Tensor:
        """Backbone outputs -> CAMs ``ReLU(fc(features))`` ``(B, num_classes, h, w)``."""
        return F.relu(self.conv_seg(self._forward_feature(inputs)))

    def loss_by_feat(self, logits: Tensor, batch_data_samples: SampleList) -> dict:
        """Multi-label loss of the logits against the samples' ``gt_class_labels``."""
        labels = stack_class_labels(batch_data_samples, self.num_classes, logits.device)
        return {self.loss_decode.loss_name: self.loss_decode(logits, labels)}

    def predict(self, inputs: List[Tensor], batch_img_metas: List[dict],
                test_cfg: ConfigType) -> Tensor:
        """CAMs resized to the input size, ``(B, num_classes, H, W)`` (not normalised)."""
        return self.predict_by_feat(self.forward_cam(inputs), batch_img_metas)

