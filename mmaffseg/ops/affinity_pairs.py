# Copyright (c) mmaffseg contributors. All rights reserved.
"""AffinityNet's pair affinities and pair targets on the radius-r neighbour pairs.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

:func:`pairwise_affinity` is the head's prediction ``exp(-mean_c |f_from - f_to|)``;
:func:`downsample_label` and :func:`affinity_pair_labels` (steps 2-3 of
:mod:`mmaffseg.wsss.affinity_labels`) its targets. Pure tensor functions used by
:class:`~mmaffseg.models.decode_heads.AffinityHead`, the random walk and the benchmarks, so they
live in this leaf package rather than in :mod:`mmaffseg.wsss` (which builds on models).
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .neighbour_offsets import neighbour_pairs
from .psa_defaults import PSA_DEFAULTS


def pairwise_affinity(feat: Tensor, radius: int = PSA_DEFAULTS.radius) -> Tensor:
    """Affinities ``exp(-mean_c |f_from - f_to|)`` of every radius pair.

    Args:
        feat (Tensor): Features ``(B, C, H, W)``.
        radius (int): Pair radius on the feature grid. Default: PSA's ``radius``.

    Returns:
        Tensor: ``(B, K, P)`` in the pair order of
        :func:`mmaffseg.ops.neighbour_offsets.pair_indices`.
    """
    f_from, f_to = neighbour_pairs(feat, radius)  # (B, C, 1, P), (B, C, K, P)
    return torch.exp(-(f_to - f_from).abs().mean(dim=1))


def downsample_label(label: Tensor, stride: int, ignore_index: int = 255) -> Tensor:
    """Reduce a label map by a block majority vote (ties: the smaller label wins).

    The map is padded with ``ignore_index`` to a multiple of ``stride``; ``ignore_index`` takes
    part in the vote like a class.

    Args:
        label (Tensor): Integer labels ``(..., H, W)``.
        stride (int): Block size.
        ignore_index (int): Label used for padding. Default: 255.

    Returns:
        Tensor: ``(..., ceil(H / stride), ceil(W / stride))``, the dtype of ``label``.
    """
    if stride == 1:
        return label
    height, width = label.shape[-2:]
    padded = F.pad(label, (0, -width % stride, 0, -height % stride), value=ignore_index)
    values, compact = torch.unique(padded, return_inverse=True)  # values ascending
    one_hot = F.one_hot(compact.reshape(-1, *compact.shape[-2:]), len(values))  # (N, H, W, V)
    votes = F.avg_pool2d(one_hot.permute(0, 3, 1, 2).float(), stride, stride)  # (N, V, h, w)
    out = values[votes.argmax(dim=1)]
    return out.view(*label.shape[:-2], *out.shape[-2:])


def affinity_pair_labels(label: Tensor, radius: int = PSA_DEFAULTS.radius,
                         ignore_index: int = 255) -> Tuple[Tensor, Tensor, Tensor]:
    """Pair targets of AffinityNet from a label map on the feature grid.

    For each radius pair (from, to), with equal labels called positive:
    ``bg_pos`` = positive and the from-label is 0; ``fg_pos`` = positive, from-label not 0 and
    both labels known; ``neg`` = different labels, both known. A pair touching ``ignore_index``
    is in no set (as the reference, two unknown pixels are "equal" but neither bg nor fg).

    Args:
        label (Tensor): Integer labels ``(..., h, w)`` (0 background, ``ignore_index`` unknown).
        radius (int): Pair radius. Default: PSA's ``radius``.
        ignore_index (int): Unknown label. Default: 255.

    Returns:
        tuple[Tensor, Tensor, Tensor]: float32 ``bg_pos``, ``fg_pos``, ``neg``, each
        ``(..., K, P)`` in the pair order of
        :func:`mmaffseg.ops.neighbour_offsets.pair_indices`.
    """
    l_from, l_to = neighbour_pairs(label, radius)  # (..., 1, P), (..., K, P)
    known = (l_from != ignore_index) & (l_to != ignore_index)
    same = l_from == l_to
    bg_pos = same & (l_from == 0)
    fg_pos = same & (l_from != 0) & known
    neg = ~same & known
    return bg_pos.float(), fg_pos.float(), neg.float()
