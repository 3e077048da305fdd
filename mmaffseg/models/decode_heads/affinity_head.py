# Copyright (c) mmaffseg contributors. All rights reserved.
"""AffinityNet head: semantic affinities between nearby pixels.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

Three backbone levels are reduced by 1x1 convs (no bias) + ELU (512 -> 64, 1024 -> 128,
4096 -> 256 for ResNet-38), concatenated (448) and mixed by a 1x1 conv + ELU. The affinity of
two pixels closer than ``radius`` on the feature grid is ``exp(-mean_c |f_i - f_j|)`` (the
reference takes the channel mean; the paper writes the L1 norm). Training targets come from the
affinity-label map in ``gt_sem_seg``: see :mod:`mmaffseg.wsss.affinity_labels`.
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, SampleList
from torch import Tensor

from ...ops.affinity_pairs import affinity_pair_labels, downsample_label, pairwise_affinity
from ...ops.psa_defaults import PSA_DEFAULTS


@MODELS.register_module()
class AffinityHead(BaseDecodeHead):
    """AffinityNet head; ``forward`` returns the affinity features ``(B, channels, h, w)``.

    Use it with the :class:`mmaffseg.models.segmentors.AffinityNet` segmentor (or any
    ``EncoderDecoder``: the loss needs only the affinity-label map as ``gt_sem_seg``).

    Args:
        in_channels (Sequence[int]): Channels of the backbone levels read. Default: (512, 1024,
            4096), the ResNet-38 levels; e.g. (512, 1024, 2048) with ``in_index=(1, 2, 3)`` for a
            ResNet-50-D8.
        branch_channels (Sequence[int]): Output channels of the per-level 1x1 convs.
            Default: (64, 128, 256).
        channels (int): Channels of the affinity features (the mixing 1x1 conv). Default: 448.
        radius (int): Pair radius on the feature grid. Default: PSA's ``radius``.
        label_stride (int): Ratio between the label map and the feature grid. Default: PSA's
            ``stride``.
        num_classes (int): Classes of the affinity labels; only stored (mmseg segmentors read
            it). Default: 21.
        in_index (Sequence[int]): Indices of the backbone outputs read. Default: (0, 1, 2).
        act_cfg (dict): Activation after each conv. Default: ELU.
        loss_decode (dict): The pair loss, called as ``loss(aff, bg_pos, fg_pos, neg)`` and
            providing ``terms(...)`` for logging. Default: ``dict(type='AffinityPairLoss')``.
        init_cfg (dict, optional): Initialisation config. Default None: the reference
            initialisation (Kaiming-normal branch convs, Xavier-uniform gain 4 mixing conv).
        **kwargs: Other :class:`BaseDecodeHead` arguments (``conv_cfg``, ``norm_cfg``,
            ``ignore_index``, ``align_corners``...). ``norm_cfg`` defaults to None (no norm, as
            in the reference).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (512, 1024, 4096),
                 branch_channels: Sequence[int] = (64, 128, 256),
                 channels: int = 448,
                 radius: int = PSA_DEFAULTS.radius,
                 label_stride: int = PSA_DEFAULTS.stride,
                 num_classes: int = 21,
                 in_index: Sequence[int] = (0, 1, 2),
                 act_cfg: ConfigType = dict(type='ELU'),  # noqa: B006
                 loss_decode: ConfigType = dict(type='AffinityPairLoss'),  # noqa: B006
                 init_cfg: OptConfigType = None,
                 **kwargs):
        if len(branch_channels) != len(in_channels):
            raise ValueError(f'branch_channels {tuple(branch_channels)} needs one entry per '
                             f'input level, in_channels has {len(in_channels)}')
        super().__init__(
            in_channels,
            channels,
            num_classes=num_classes,
            in_index=in_index,
            input_transform='multiple_select',
            act_cfg=act_cfg,
            dropout_ratio=0,
            loss_decode=loss_decode,
            init_cfg=init_cfg,
            **kwargs)
        if isinstance(self.loss_decode, nn.ModuleList):
            raise ValueError('AffinityHead takes one loss_decode dict with the signature of '
                             'AffinityPairLoss (aff, bg_pos, fg_pos, neg), got a list')
        del self.conv_seg  # affinities need no classifier
        self.radius = radius
        self.label_stride = label_stride
        conv_kwargs = dict(
            kernel_size=1, bias=False, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
        self.lateral_convs = nn.ModuleList(
            ConvModule(cin, cout, **conv_kwargs)
            for cin, cout in zip(self.in_channels, branch_channels))
        self.fuse_conv = ConvModule(sum(branch_channels), channels, **conv_kwargs)

    def init_weights(self):
        super().init_weights()
        if self.init_cfg is None:  # the reference initialisation
            for conv in self.lateral_convs:
                nn.init.kaiming_normal_(conv.conv.weight)
            nn.init.xavier_uniform_(self.fuse_conv.conv.weight, gain=4)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Backbone levels -> affinity features ``(B, channels, h, w)`` at the first level."""
        feats = self._transform_inputs(inputs)
        size = feats[0].shape[2:]
        feats = [
            conv(f if f.shape[2:] == size else resize(
                f, size, mode='bilinear', align_corners=self.align_corners))
            for conv, f in zip(self.lateral_convs, feats)
        ]
        return self.fuse_conv(torch.cat(feats, dim=1))

    def predict_affinity(self, inputs: List[Tensor]) -> Tensor:
        """Backbone levels -> pair affinities ``(B, K, P)`` on the feature grid."""
        return pairwise_affinity(self.forward(inputs), self.radius)

    def loss_by_feat(self, feat: Tensor, batch_data_samples: SampleList) -> dict:
        """Balanced pair loss against the affinity-label maps in ``gt_sem_seg``.

        Args:
            feat (Tensor): Affinity features ``(B, channels, h, w)``.
            batch_data_samples (list[SegDataSample]): With ``gt_sem_seg`` holding the
                affinity-label map at image resolution (0 confident background, c > 0 a class,
                ``ignore_index`` unknown, padding included).

        Returns:
            dict[str, Tensor]: The weighted loss (named by the loss module) plus the detached
            ``aff_bg``, ``aff_fg`` and ``aff_neg`` terms for logging.
        """
        label = self._stack_batch_gt(batch_data_samples)[:, 0]  # (B, H, W)
        label = downsample_label(label, self.label_stride, self.ignore_index)
        if label.shape[-2:] != feat.shape[-2:]:
            raise ValueError(
                f'affinity labels downsampled by label_stride={self.label_stride} have size '
                f'{tuple(label.shape[-2:])} but the features are {tuple(feat.shape[-2:])}; set '
                'label_stride to the backbone output stride')
        targets = affinity_pair_labels(label, self.radius, self.ignore_index)
        aff = pairwise_affinity(feat, self.radius)
        losses = {self.loss_decode.loss_name: self.loss_decode(aff, *targets)}
        with torch.no_grad():
            terms = self.loss_decode.terms(aff, *targets)
        losses.update(aff_bg=terms[0], aff_fg=terms[1], aff_neg=terms[2])
        return losses
