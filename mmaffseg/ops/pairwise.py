# Copyright (c) mmaffseg contributors. All rights reserved.
"""Pairwise similarities and distances between two sets of vectors, computed for all pairs at once.

Shared by the losses that compare every pixel with every other pixel (the DSRL feature affinity
loss, metric-learning embedding losses). Every function takes point sets laid out as
``(..., N, C)``: any leading (batch) dimensions, ``N`` points, ``C`` channels, and works on each
leading index independently, so a batch never mixes samples.

All of them compute in float32 with autocast off
(:func:`~mmaffseg.ops.precision.float32_math`) and return float32, whatever the
precision of the inputs or of the surrounding ``torch.autocast`` region: in float16 the
cross term ``2 <x, y>`` of the distance expansion is off by ~0.4 at ``|x|^2 ~ 300``, products
above 65504 overflow to inf (a distance of inf - inf clamped to 0, silently), and mask pixel
counts above 65504 are not representable.
"""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from .precision import float32_math


def flatten_spatial(feats: Tensor) -> Tensor:
    """Lay a feature map out as a point set.

    Args:
        feats (Tensor): Feature map of shape (B, C, H, W).

    Returns:
        Tensor: Points of shape (B, H * W, C), row-major over (H, W).
    """
    if feats.dim() != 4:
        raise ValueError(f'flatten_spatial expects a (B, C, H, W) feature map, got shape '
                         f'{tuple(feats.shape)}.')
    return feats.flatten(2).transpose(1, 2)


@float32_math
def pairwise_cosine_similarity(x: Tensor, y: Optional[Tensor] = None,
                               eps: float = 1e-12) -> Tensor:
    """Cosine similarity ``S_ij = <x_i / |x_i|, y_j / |y_j|>`` of every pair of points.

    Args:
        x (Tensor): Points of shape (..., N, C).
        y (Tensor, optional): Points of shape (..., M, C). Defaults to ``x``.
        eps (float): Lower bound of a norm, so that an all-zero vector has zero similarity to
            everything instead of NaN. Defaults to 1e-12.

    Returns:
        Tensor: float32 similarities of shape (..., N, M), in [-1, 1].
    """
    x = F.normalize(x, p=2, dim=-1, eps=eps)
    y = x if y is None else F.normalize(y, p=2, dim=-1, eps=eps)
    return x @ y.transpose(-1, -2)


@float32_math
def pairwise_squared_distances(x: Tensor,
                               y: Optional[Tensor] = None,
                               x_sq_norms: Optional[Tensor] = None) -> Tensor:
    """Squared Euclidean distance ``|x_i - y_j|^2`` of every pair of points.

    Uses the expansion ``|x_i|^2 + |y_j|^2 - 2 <x_i, y_j>`` (one matrix product instead of an
    (N, M, C) difference tensor); rounding can push it slightly below zero, so it is clamped at 0.

    Args:
        x (Tensor): Points of shape (..., N, C).
        y (Tensor, optional): Points of shape (..., M, C). Defaults to ``x``.
        x_sq_norms (Tensor, optional): ``|x_i|^2`` of shape (..., N), for callers that compare
            the same ``x`` with many ``y`` in turn. Computed when omitted.

    Returns:
        Tensor: float32 squared distances of shape (..., N, M).
    """
    y = x if y is None else y
    if x_sq_norms is None:
        x_sq_norms = x.pow(2).sum(-1)
    sq_x = x_sq_norms.unsqueeze(-1)  # (..., N, 1)
    sq_y = y.pow(2).sum(-1).unsqueeze(-2)  # (..., 1, M)
    return (sq_x + sq_y - 2 * (x @ y.transpose(-1, -2))).clamp_min(0)


@float32_math
def pairwise_mask_iou(x: Tensor, y: Optional[Tensor] = None) -> Tensor:
    """IoU of every pair of binary masks, as one matrix product.

    Args:
        x (Tensor): Masks (..., N, P) (bool or 0/1; pixels flattened).
        y (Tensor, optional): Masks (M, P) to compare with. Defaults to ``x`` (then ``x`` must
            be (N, P)).

    Returns:
        Tensor: (..., N, M) float32 IoU; 0 where both masks are empty.
    """
    a = x.float()
    b = a if y is None else y.float()
    inter = a @ b.transpose(-1, -2)
    union = a.sum(-1, keepdim=True) + b.sum(-1) - inter
    return inter / union.clamp_min(1)
