# Copyright (c) mmaffseg contributors. All rights reserved.
"""Context prior head of CPNet.

Paper: Changqian Yu, Jingbo Wang, Changxin Gao, Gang Yu, Chunhua Shen, Nong Sang,
"Context Prior for Scene Segmentation", CVPR 2020.

On the prior grid of N = h * w cells (``prior_size``)::

    V = AggregationModule(x)                                    (B, C_p, h, w)
    P = sigmoid(N(Conv1x1(V)))  read as (B, N, N): P[b, i, j] = channel j at cell i
    intra = P V / N,  inter = (1 - P) V / N                     V as (B, N, C_p)
                                                                (prior_contexts)
    out = conv_seg(Dropout(ReLU(N(Conv3x3([x, Conv1x1(intra), Conv1x1(inter)])))))

``P`` predicts the ideal affinity ``A_ij = [label_i == label_j]`` and is supervised by
:class:`~mmaffseg.models.losses.ContextPriorLoss` (added by :meth:`CPHead.loss_by_feat`). Both
contexts are divided by the constant N, as in the official code (not by the row sums of P).

The prior conv has N output channels, so the official head only runs when the feature map is
exactly ``prior_size`` (``size_mode='strict'``, the default): train on crops of
``prior_size * output_stride`` and test with slide inference on the same crop size.
``size_mode='resize'`` (opt-in) works at any input size: the aggregated features are resized
bilinearly to the prior grid, the prior map and both contexts are computed there, and the
contexts are resized back to the feature size before the concatenation.
"""
from typing import List, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor
from torch.nn.modules.utils import _pair

from ...ops.precision import float32_math
from ..layers.aggregation_module import AggregationModule

SIZE_MODES = ('strict', 'resize')
_HALF = (torch.float16, torch.bfloat16)


def prior_contexts(prior_map: Tensor, value: Tensor) -> Tuple[Tensor, Tensor]:
    """The intra- and inter-class contexts ``P V / N`` and ``(1 - P) V / N``.

    In float32 the inter-class context is ``mean_j V_j - P V / N``: one N x N product, as the
    official code divides both by N. In half precision (autocast, or half-precision features)
    that difference of two rounded values loses the inter-class context of the cells of a
    dominant class, where ``P V`` is most of ``sum_j V_j`` (in bfloat16 a few per cent of it on
    such rows, where a product is good to 0.4 %), so it is computed directly, ``(1 - P) V / N``,
    a second product in half precision.

    Args:
        prior_map (Tensor): (B, N, N) context prior map, float32 probabilities.
        value (Tensor): (B, N, C) aggregated features.

    Returns:
        tuple[Tensor, Tensor]: ``intra`` and ``inter``, (B, N, C) each.
    """
    num_cells = prior_map.shape[1]
    intra = torch.bmm(prior_map.to(value.dtype), value) / num_cells
    if value.dtype in _HALF or torch.is_autocast_enabled(value.device.type):
        inter = torch.bmm((1 - prior_map).to(value.dtype), value) / num_cells
    else:  # (1 - P) V = 1 (sum_j V_j) - P V: no second N x N matrix
        inter = value.sum(1, keepdim=True) / num_cells - intra
    return intra, inter


@MODELS.register_module()
class CPHead(BaseDecodeHead):
    """Context prior head: aggregation module, context prior map, intra/inter-class context.

    :meth:`forward` returns the logits; :meth:`forward_with_prior` also returns the prior map,
    which :meth:`loss` passes to :meth:`loss_by_feat` for the affinity loss.

    Args:
        prior_channels (int): Channels of the aggregated value ``V`` (512 official).
        prior_size (int | tuple[int, int]): Prior grid (h, w); N = h * w is the prior conv's
            output width. 64 in the official 512x512-crop config (output stride 8).
        am_kernel_size (int): Separable kernel length of the aggregation module.
            Defaults to 11.
        groups (int): Groups of the prior conv. Defaults to 1.
        size_mode (str): ``'strict'`` (official: the feature map must be ``prior_size``) or
            ``'resize'`` (any size; see the module docstring). Defaults to ``'strict'``.
        loss_prior_decode (dict): Config of the prior map loss.
            Defaults to ``dict(type='ContextPriorLoss', loss_weight=1.0)``.
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels``, ``channels``,
            ``num_classes``, ``norm_cfg``, ``loss_decode``, ``ignore_index``...).
    """

    def __init__(self,
                 prior_channels: int,
                 prior_size: Union[int, Tuple[int, int]],
                 am_kernel_size: int = 11,
                 groups: int = 1,
                 size_mode: str = 'strict',
                 loss_prior_decode: ConfigType = dict(type='ContextPriorLoss', loss_weight=1.0),  # noqa: B006 (mmcv style)
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if size_mode not in SIZE_MODES:
            raise ValueError(f'size_mode must be one of {SIZE_MODES}, got {size_mode!r}')
        if not isinstance(self.in_channels, int):
            raise ValueError('CPHead takes one feature map: leave input_transform=None and pick '
                             f'it with in_index (got in_channels={self.in_channels}).')
        self.prior_channels = prior_channels
        self.prior_size = _pair(prior_size)
        self.size_mode = size_mode
        num_cells = self.prior_size[0] * self.prior_size[1]
        common = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg)
        self.aggregation = AggregationModule(self.in_channels, prior_channels, am_kernel_size,
                                             act_cfg=self.act_cfg, **common)
        self.prior_conv = ConvModule(prior_channels, num_cells, 1, groups=groups, act_cfg=None,
                                     **common)
        self.intra_conv = ConvModule(prior_channels, prior_channels, 1, act_cfg=self.act_cfg,
                                     **common)
        self.inter_conv = ConvModule(prior_channels, prior_channels, 1, act_cfg=self.act_cfg,
                                     **common)
        self.bottleneck = ConvModule(self.in_channels + 2 * prior_channels, self.channels, 3,
                                     padding=1, act_cfg=self.act_cfg, **common)
        self.loss_prior_decode = MODELS.build(loss_prior_decode)

    def _check_size(self, size: torch.Size) -> None:
        if self.size_mode == 'strict' and tuple(size) != self.prior_size:
            h, w = self.prior_size
            raise ValueError(
                f"CPHead(size_mode='strict') needs the feature map to be exactly "
                f'prior_size={self.prior_size}, got {tuple(size)}. Train on crops of '
                f'prior_size * output stride (e.g. {h * 8}x{w * 8} at stride 8) and test '
                f"with test_cfg=dict(mode='slide', crop_size=({h * 8}, {w * 8}), "
                f"stride=...), or set size_mode='resize' to run at any input size.")

    def _resize(self, x: Tensor, size) -> Tensor:
        if tuple(x.shape[2:]) == tuple(size):
            return x
        return resize(x, size=size, mode='bilinear', align_corners=self.align_corners)

    def forward_with_prior(self, inputs: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """Logits (B, num_classes, H, W) and context prior map (B, N, N)."""
        x = self._transform_inputs(inputs)
        self._check_size(x.shape[2:])
        batch = x.shape[0]
        value = self._resize(self.aggregation(x), self.prior_size)  # (B, C_p, h, w)
        prior_logits = self.prior_conv(value).flatten(2).transpose(1, 2)  # (B, N, N)
        # float32 under autocast: a half-precision sigmoid saturates to exactly 1 at logits
        # above ~8 and the prior loss's BCE gradient of such a wrong cell overflows.
        prior_map = float32_math(torch.sigmoid)(prior_logits)
        intra, inter = prior_contexts(prior_map, value.flatten(2).transpose(1, 2))

        def to_map(context: Tensor) -> Tensor:  # (B, N, C_p) -> (B, C_p, H, W)
            return context.transpose(1, 2).reshape(batch, -1, *self.prior_size)

        intra = self._resize(self.intra_conv(to_map(intra)), x.shape[2:])
        inter = self._resize(self.inter_conv(to_map(inter)), x.shape[2:])
        output = self.bottleneck(torch.cat([x, intra, inter], dim=1))
        return self.cls_seg(output), prior_map

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Logits (B, num_classes, H, W), at the input feature resolution."""
        return self.forward_with_prior(inputs)[0]

    def loss(self, inputs: Tuple[Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType) -> dict:
        """Segmentation losses plus the context prior loss."""
        return self.loss_by_feat(self.forward_with_prior(inputs), batch_data_samples)

    def prior_labels(self, seg_label: Tensor) -> Tensor:
        """Nearest-resize (B, 1, H, W) labels to the prior grid, (B, N) (official sampling)."""
        label = F.interpolate(seg_label.float(), size=self.prior_size, mode='nearest')
        return label.long().flatten(1)

    def loss_by_feat(self, seg_logits: Tuple[Tensor, Tensor],
                     batch_data_samples: SampleList) -> dict:
        """Losses from ``(logits, prior_map)``.

        Args:
            seg_logits (tuple[Tensor, Tensor]): Logits (B, num_classes, H, W) and the prior
                map (B, N, N) from :meth:`forward_with_prior`.
            batch_data_samples (list[SegDataSample]): Samples with ``gt_sem_seg``.

        Returns:
            dict: ``loss_decode`` items, ``acc_seg`` and the prior loss (``loss_prior``).
        """
        seg_logits, prior_map = seg_logits
        losses = super().loss_by_feat(seg_logits, batch_data_samples)
        label = self.prior_labels(self._stack_batch_gt(batch_data_samples))
        losses[self.loss_prior_decode.loss_name] = self.loss_prior_decode(prior_map, label)
        return losses
