# Copyright (c) mmaffseg contributors. All rights reserved.
"""Feature affinity (FA) loss of DSRL.

Reference:
    Li Wang, Dong Li, Yousong Zhu, Lu Tian, Yi Shan. "Dual Super-Resolution Learning for
    Semantic Segmentation". CVPR 2020.

Both feature maps are subsampled (by ``subsample_factor``, default 1/8), every position's feature
vector is L2-normalised, and the pairwise cosine-similarity matrices ``S`` (N x N, N = positions)
of the two maps are compared with a mean absolute difference::

    L_fa(b) = 1 / N^2 * sum_ij |S_seg(b)_ij - S_sr(b)_ij|

The loss is computed for every sample on its own and only then reduced over the batch (mean by
default), so its value does not depend on the batch size and samples never mix.

Padding. mmseg pads every sample of a batch at the bottom/right up to the batch size; with
``RandomResize`` (ratio 0.5-2.0) and a crop, up to 75 % of a canvas can be padding. Given a
``valid_mask`` (1 inside each sample's unpadded image), the loss uses only the valid positions:
with ``V(b)`` the valid cells of the subsampled map and ``n(b) = |V(b)|``::

    L_fa(b) = 1 / n(b)^2 * sum_{i, j in V(b)} |S_seg(b)_ij - S_sr(b)_ij|

A cell at the FA resolution counts as soon as it holds one valid pixel. Its feature is then the
mean over its valid pixels only (``'avg'``), or its top-left pixel (``'stride'``; for padding
at the bottom/right that pixel is valid exactly when the cell holds any valid pixel), so no
padding value enters a feature. A partly valid cell (an image edge that the stride does not
divide) thus weighs as much as a full one; it is at most one row and one column of cells.
Without a mask every position counts (the formula above with ``V`` = all cells).
"""
import math
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.losses.utils import weight_reduce_loss
from mmseg.registry import MODELS
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ...ops.pairwise import flatten_spatial, pairwise_cosine_similarity
from ...ops.precision import float32_math

SUBSAMPLE_MODES = ('avg', 'stride')


def subsample_stride(subsample_factor: float) -> int:
    """The integer pooling stride ``k = 1 / subsample_factor``.

    Args:
        subsample_factor (float): Output size over input size, ``1 / k`` for an integer k >= 1.

    Returns:
        int: The stride k.
    """
    if not 0 < subsample_factor <= 1:
        raise ValueError(f'subsample_factor must be 1/k for an integer k >= 1, got '
                         f'{subsample_factor}.')
    stride = round(1 / subsample_factor)
    if not math.isclose(stride * subsample_factor, 1.0, rel_tol=1e-6):
        raise ValueError(f'subsample_factor must be 1/k for an integer k >= 1 (e.g. 1/8), got '
                         f'{subsample_factor} (1/{1 / subsample_factor:.4g}).')
    return stride


def subsample_features(feats: Tensor, stride: int, mode: str = 'avg') -> Tensor:
    """Reduce a feature map by an integer stride that divides its height and width.

    Args:
        feats (Tensor): Feature map of shape (B, C, H, W).
        stride (int): Subsampling stride k; H and W must be multiples of k.
        mode (str): ``'avg'`` averages each k x k cell, ``'stride'`` keeps its top-left
            position. Defaults to 'avg'.

    Returns:
        Tensor: Feature map of shape (B, C, H / k, W / k).
    """
    if mode not in SUBSAMPLE_MODES:
        raise ValueError(f'subsample mode must be one of {SUBSAMPLE_MODES}, got {mode!r}.')
    height, width = feats.shape[-2:]
    if height % stride or width % stride:
        raise ValueError(
            f'Feature affinity subsampling by 1/{stride} needs a feature height and width '
            f'divisible by {stride}, got {height}x{width}. Change subsample_factor, or the crop '
            f'size so that the compared maps are multiples of {stride}.')
    if stride == 1:
        return feats
    if mode == 'avg':
        return F.avg_pool2d(feats, kernel_size=stride, stride=stride)
    return feats[..., ::stride, ::stride]


def subsample_valid_mask(valid_mask: Tensor, stride: int, mode: str = 'avg') -> Tensor:
    """The cells of :func:`subsample_features` that hold at least one valid pixel.

    Args:
        valid_mask (Tensor): (B, 1, H, W) or (B, H, W) mask, nonzero at valid pixels.
        stride (int): Subsampling stride k (divides H and W).
        mode (str): ``'avg'`` (a cell counts if any of its k x k pixels is valid) or
            ``'stride'`` (if its top-left pixel is valid). Defaults to 'avg'.

    Returns:
        Tensor: (B, 1, H / k, W / k) float mask of 0 / 1.
    """
    mask = (valid_mask if valid_mask.dim() == 4 else valid_mask.unsqueeze(1)) != 0
    mask = mask.float()
    if mode == 'stride':
        return subsample_features(mask, stride, mode)
    return (subsample_features(mask, stride, 'avg') > 0).float()


def _masked_subsample(feats: Tensor, valid_mask: Tensor, stride: int, mode: str) -> Tensor:
    """:func:`subsample_features` where each 'avg' cell averages its valid pixels only."""
    if mode == 'stride':
        return subsample_features(feats, stride, mode)
    mask = valid_mask.to(feats.dtype)
    valid_fraction = subsample_features(mask, stride, 'avg')
    # a valid cell holds >= 1 of k^2 pixels, so the clamp changes only the cells without a
    # valid pixel: they become 0 (finite, also in half precision; excluded from the loss)
    return (subsample_features(feats * mask, stride, 'avg') /
            valid_fraction.clamp_min(1.0 / stride**2))


def _abs_similarity_difference(rows_a: Tensor, points_a: Tensor, rows_b: Tensor,
                               points_b: Tensor, row_mask: Optional[Tensor] = None,
                               point_mask: Optional[Tensor] = None) -> Tensor:
    """Sum over a block of rows of |S_a - S_b|, per sample: (B, R, C) x (B, N, C) -> (B,).

    ``row_mask`` (B, R) and ``point_mask`` (B, N), both or neither, weight each pair by
    ``row_mask_i * point_mask_j`` (0 / 1: the pairs between valid positions).
    """
    sim_a = pairwise_cosine_similarity(rows_a, points_a)  # (B, R, N)
    sim_b = pairwise_cosine_similarity(rows_b, points_b)
    diff = (sim_a - sim_b).abs()
    if row_mask is not None:
        diff = diff * (row_mask.unsqueeze(2) * point_mask.unsqueeze(1))
    return diff.sum(dim=(1, 2))


def feature_affinity_loss(seg_feats: Tensor,
                          sr_feats: Tensor,
                          subsample_factor: float = 1 / 8,
                          subsample_mode: str = 'avg',
                          chunk_size: Optional[int] = None,
                          valid_mask: Optional[Tensor] = None) -> Tensor:
    """Per-sample FA loss between two feature maps of the same spatial size.

    Args:
        seg_feats (Tensor): Segmentation-side features of shape (B, C1, H, W).
        sr_feats (Tensor): Super-resolution-side features of shape (B, C2, H, W). The channel
            counts may differ: only the (N x N) similarity matrices are compared.
        subsample_factor (float): Size of the compared maps relative to the inputs, 1/k with
            k dividing H and W. Defaults to 1/8.
        subsample_mode (str): ``'avg'`` (average each k x k cell) or ``'stride'`` (keep every
            k-th position). Defaults to 'avg'.
        chunk_size (int, optional): If set, the similarity matrices are built ``chunk_size`` rows
            at a time and recomputed in the backward pass (activation checkpointing), so memory
            grows with chunk_size * N instead of N^2. Same value and gradient. Defaults to None
            (whole matrices at once).
        valid_mask (Tensor, optional): (B, 1, H, W) or (B, H, W), nonzero inside each sample's
            unpadded image; only the positions of valid cells enter the loss (see the module
            docstring). Defaults to None (every position counts).

    Returns:
        Tensor: The loss of every sample, shape (B,); 0 for a sample without a valid cell.
    """
    if seg_feats.dim() != 4 or sr_feats.dim() != 4:
        raise ValueError(f'FA loss expects two (B, C, H, W) feature maps, got shapes '
                         f'{tuple(seg_feats.shape)} and {tuple(sr_feats.shape)}.')
    if seg_feats.shape[0] != sr_feats.shape[0] or seg_feats.shape[2:] != sr_feats.shape[2:]:
        raise ValueError(f'FA loss compares maps of the same batch size and spatial size, got '
                         f'{tuple(seg_feats.shape)} (segmentation) and {tuple(sr_feats.shape)} '
                         f'(super-resolution); resize one of them first.')
    stride = subsample_stride(subsample_factor)
    cell_mask = None  # (B, N): 1 at the valid cells
    if valid_mask is None:
        seg_points = flatten_spatial(subsample_features(seg_feats, stride, subsample_mode))
        sr_points = flatten_spatial(subsample_features(sr_feats, stride, subsample_mode))
    else:
        if valid_mask.dim() == 3:
            valid_mask = valid_mask.unsqueeze(1)
        if (valid_mask.dim() != 4 or valid_mask.shape[1] != 1
                or valid_mask.shape[0] != seg_feats.shape[0]
                or valid_mask.shape[2:] != seg_feats.shape[2:]):
            raise ValueError(f'FA loss valid_mask must have shape (B, 1, H, W) or (B, H, W) '
                             f'matching the features {tuple(seg_feats.shape)}, got '
                             f'{tuple(valid_mask.shape)}.')
        valid_mask = (valid_mask != 0).to(seg_feats.dtype)
        seg_points = flatten_spatial(
            _masked_subsample(seg_feats, valid_mask, stride, subsample_mode))
        sr_points = flatten_spatial(
            _masked_subsample(sr_feats, valid_mask, stride, subsample_mode))
        cell_mask = subsample_valid_mask(valid_mask, stride, subsample_mode).flatten(1)
        cell_mask = cell_mask.to(seg_points.dtype)
    num_points = seg_points.shape[1]  # N = (H / k) * (W / k)

    if chunk_size is None or chunk_size >= num_points:
        total = _abs_similarity_difference(seg_points, seg_points, sr_points, sr_points,
                                           cell_mask, cell_mask)
    else:
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be a positive integer or None, got {chunk_size}.')
        total = seg_points.new_zeros(seg_points.shape[0])
        for start in range(0, num_points, chunk_size):
            rows = slice(start, start + chunk_size)
            row_mask = None if cell_mask is None else cell_mask[:, rows]
            total = total + checkpoint(
                _abs_similarity_difference, seg_points[:, rows], seg_points, sr_points[:, rows],
                sr_points, row_mask, cell_mask, use_reentrant=False)
    if cell_mask is None:
        return total / num_points**2
    return total / cell_mask.sum(1).clamp_min(1)**2


@MODELS.register_module()
class FeatureAffinityLoss(nn.Module):
    """DSRL feature affinity loss: L1 distance of the pairwise similarity matrices of two maps.

    Args:
        subsample_factor (float): Size of the compared maps relative to the inputs, ``1/k`` with
            k an integer dividing the input height and width. Defaults to 1/8.
        subsample_mode (str): ``'avg'`` (average pooling, as DSRL's public ports) or
            ``'stride'`` (keep every k-th position). Defaults to 'avg'.
        chunk_size (int, optional): Rows of the similarity matrices built at a time, with
            activation checkpointing; bounds memory for large maps. Defaults to None.
        reduction (str): Reduction over the batch of per-sample losses: ``'none'``, ``'mean'``
            or ``'sum'``. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss item; mmseg sums items whose name starts with
            ``loss_``. Defaults to 'loss_fa'.
    """

    def __init__(self,
                 subsample_factor: float = 1 / 8,
                 subsample_mode: str = 'avg',
                 chunk_size: Optional[int] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_fa') -> None:
        super().__init__()
        subsample_stride(subsample_factor)  # validate early, at build time
        if subsample_mode not in SUBSAMPLE_MODES:
            raise ValueError(f'subsample_mode must be one of {SUBSAMPLE_MODES}, got '
                             f'{subsample_mode!r}.')
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}.")
        self.subsample_factor = subsample_factor
        self.subsample_mode = subsample_mode
        self.chunk_size = chunk_size
        self.reduction = reduction
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @float32_math  # the sum over N^2 pairs overflows in half precision
    def forward(self,
                seg_feats: Tensor,
                sr_feats: Tensor,
                weight: Optional[Tensor] = None,
                reduction_override: Optional[str] = None,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        """Compute the weighted loss.

        Args:
            seg_feats (Tensor): Segmentation-side features (B, C1, H, W).
            sr_feats (Tensor): Super-resolution-side features (B, C2, H, W).
            weight (Tensor, optional): Per-sample weights of shape (B,). Defaults to None.
            reduction_override (str, optional): Overrides ``reduction``. Defaults to None.
            valid_mask (Tensor, optional): (B, 1, H, W) mask of the unpadded pixels; only
                valid positions enter the affinity matrices. Defaults to None (all count).

        Returns:
            Tensor: The loss, a scalar or (B,) with reduction 'none'.
        """
        reduction = reduction_override or self.reduction
        loss = feature_affinity_loss(seg_feats, sr_feats, self.subsample_factor,
                                     self.subsample_mode, self.chunk_size, valid_mask)
        return self.loss_weight * weight_reduce_loss(loss, weight=weight, reduction=reduction)

    @property
    def loss_name(self) -> str:
        """Name of the loss item."""
        return self._loss_name
