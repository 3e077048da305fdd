# Copyright (c) mmaffseg contributors. All rights reserved.
"""Hypercolumn feature head of Semantic Soft Segmentation.

Aksoy, Oh, Paris, Pollefeys and Matusik, "Semantic Soft Segmentation", ACM Transactions on
Graphics (Proc. SIGGRAPH), 2018.

Every tapped level goes through its own convolution (input image -> 4 channels, pool1 -> 124,
res3b3 -> 128, res4b22 -> 256, res5c -> 512; kernels 1x1, 1x1, 1x1, 3x3, 3x3 as the official
code, where the paper's supplement describes 3x3 for all), is resized
bilinearly to the output resolution (the input's, by default), and the 1024 concatenated
channels pass a ReLU and two per-pixel layers, 1024 -> 512 (ReLU) -> 128, with dropout 0.5
before each of the two in training. The result is a d = 128 embedding per pixel, trained with
:class:`~mmaffseg.models.losses.NPairL2Loss` on instance (or semantic) segments.

The official code factorises the per-pixel layers into low-rank products and feeds both hidden
layers to the last one; we use the plain 1024 -> 512 -> 128 stack the paper describes.

Pair it with :class:`~mmaffseg.models.backbones.HypercolumnBackbone`, which returns
``[image, stem, *stages]`` from any mmseg backbone.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from ...structures.instance_map import segment_labels, stack_instance_maps


@MODELS.register_module()
class HypercolumnHead(BaseDecodeHead):
    """Per-pixel embedding from a hypercolumn of several backbone levels.

    ``seg_logits`` of this head are the embedding (B, embed_dims, H / s, W / s), not class
    scores; its ``loss_by_feat`` builds class-agnostic segment labels from
    ``gt_instance_map`` (when packed, see ``PackSegInstanceInputs``) and ``gt_sem_seg``.

    Args:
        in_channels (Sequence[int]): Channels of the tapped inputs, e.g.
            ``(3, 64, 512, 1024, 2048)`` for image, stem, stages 2-4 of a ResNet-101.
        channels (int): Hidden per-pixel layer width. Defaults to 512.
        embed_dims (int): Embedding dimension d. Defaults to 128.
        tap_channels (Sequence[int]): Output channels of each tap convolution. Defaults to
            ``(4, 124, 128, 256, 512)`` (1024 in all).
        tap_kernel_sizes (Sequence[int]): Kernel size of each tap convolution. Defaults to
            ``(1, 1, 1, 3, 3)`` (the official code's; the supplement's: all 3).
        output_stride (int): Output resolution is the first tapped input's divided by this
            (rounded up). Defaults to 1 (the input resolution, as the paper).
        dropout_ratio (float): Per-pixel dropout before each of the two last layers.
            Defaults to 0.5.
        in_index (Sequence[int]): Which backbone outputs are tapped. Defaults to
            ``(0, 1, 2, 3, 4)``.
        input_transform (str): Must stay ``'multiple_select'``.
        loss_decode (dict | list[dict]): Loss config(s), called as
            ``loss(embedding, segment_labels, ignore_index=...)``. Defaults to
            ``dict(type='NPairL2Loss')``.
        **kwargs: Other ``BaseDecodeHead`` arguments (``norm_cfg`` and ``act_cfg`` apply to
            the tap convolutions and the hidden layer, ``conv_cfg``, ``ignore_index``,
            ``align_corners``, ``init_cfg``...). ``num_classes`` is ``embed_dims``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int = 512,
                 embed_dims: int = 128,
                 tap_channels: Sequence[int] = (4, 124, 128, 256, 512),
                 tap_kernel_sizes: Sequence[int] = (1, 1, 1, 3, 3),
                 output_stride: int = 1,
                 dropout_ratio: float = 0.5,
                 in_index: Sequence[int] = (0, 1, 2, 3, 4),
                 input_transform: str = 'multiple_select',
                 loss_decode: Optional[ConfigType] = None,
                 **kwargs) -> None:
        if loss_decode is None:
            loss_decode = dict(type='NPairL2Loss')
        num_classes = kwargs.pop('num_classes', embed_dims)
        if num_classes != embed_dims:
            raise ValueError(
                f'HypercolumnHead predicts an embedding: num_classes ({num_classes}) must equal '
                f'embed_dims ({embed_dims}); drop num_classes from the head config (a base '
                'config may set it: override decode_head with _delete_=True)')
        if input_transform != 'multiple_select':
            raise ValueError('HypercolumnHead concatenates resized taps itself; '
                             f"input_transform must be 'multiple_select', got {input_transform!r}")
        if not (len(in_channels) == len(in_index) == len(tap_channels) ==
                len(tap_kernel_sizes)):
            raise ValueError(
                'HypercolumnHead needs one entry per tap in in_channels, in_index, tap_channels '
                f'and tap_kernel_sizes, got lengths {len(in_channels)}, {len(in_index)}, '
                f'{len(tap_channels)}, {len(tap_kernel_sizes)}')
        if output_stride < 1:
            raise ValueError(f'output_stride must be >= 1, got {output_stride}')
        super().__init__(
            in_channels,
            channels,
            num_classes=embed_dims,
            dropout_ratio=dropout_ratio,
            in_index=list(in_index),
            input_transform=input_transform,
            loss_decode=loss_decode,
            **kwargs)
        self.embed_dims = embed_dims
        self.output_stride = output_stride
        self.taps = nn.ModuleList(
            ConvModule(
                c_in,
                c_out,
                k,
                padding=k // 2,
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                act_cfg=None) for c_in, c_out, k in zip(in_channels, tap_channels,
                                                        tap_kernel_sizes))
        self.tap_act = build_activation_layer(self.act_cfg)
        self.hidden = ConvModule(
            sum(tap_channels),
            channels,
            1,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
        # Per-pixel (element-wise) dropout, not BaseDecodeHead's channel-wise Dropout2d; the
        # second one is applied by cls_seg before conv_seg (channels -> embed_dims).
        self.hidden_dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else None

    def output_size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        """Embedding size for a first tapped input of ``size`` (H, W)."""
        # ceil division with // only, so a traced (tensor) size stays in an exported graph
        return (-(-size[0] // self.output_stride), -(-size[1] // self.output_stride))

    def _forward_feature(self, inputs: List[Tensor]) -> Tensor:
        """Hypercolumn after the hidden layer, shape (B, channels, H / s, W / s)."""
        feats = self._transform_inputs(inputs)
        size = self.output_size(feats[0].shape[-2:])
        taps = [
            resize(tap(x), size=size, mode='bilinear', align_corners=self.align_corners)
            for tap, x in zip(self.taps, feats)
        ]
        x = self.tap_act(torch.cat(taps, dim=1))  # (B, 1024, h, w)
        return self.hidden(self.hidden_dropout(x))

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Embedding of shape (B, embed_dims, H / s, W / s)."""
        return self.cls_seg(self._forward_feature(inputs))

    def _stack_segment_labels(self, batch_data_samples: SampleList) -> Tensor:
        """Class-agnostic segment ids (B, H, W) at the padded input size."""
        sem = torch.stack([s.gt_sem_seg.data[0] for s in batch_data_samples])
        has_inst = ['gt_instance_map' in s for s in batch_data_samples]
        if not any(has_inst):
            return segment_labels(sem, None, self.ignore_index)
        if not all(has_inst):
            raise ValueError('HypercolumnHead: gt_instance_map is packed for some samples of '
                             'the batch but not others; load it for every sample or none')
        # The data preprocessor pads gt_sem_seg but not extra maps: pad them alike.
        inst = stack_instance_maps(batch_data_samples, self.ignore_index)
        return segment_labels(sem, inst, self.ignore_index)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: SampleList) -> dict:
        """Metric losses of the embedding against the segments of each image.

        Args:
            seg_logits (Tensor): Embedding (B, embed_dims, h, w).
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg`` and optionally
                ``gt_instance_map``.

        Returns:
            dict[str, Tensor]: One entry per loss.
        """
        labels = self._stack_segment_labels(batch_data_samples)
        if labels.shape[-2:] != seg_logits.shape[-2:]:
            labels = F.interpolate(labels[:, None].float(), size=seg_logits.shape[-2:],
                                   mode='nearest')[:, 0].long()
        losses = self.loss_decode if isinstance(self.loss_decode,
                                                nn.ModuleList) else [self.loss_decode]
        loss = dict()
        for loss_decode in losses:
            value = loss_decode(seg_logits, labels, ignore_index=self.ignore_index)
            loss[loss_decode.loss_name] = loss.get(loss_decode.loss_name, 0) + value
        return loss
