# Copyright (c) mmaffseg contributors. All rights reserved.
"""Balanced affinity loss of AffinityNet.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

Pairs fall into three sets (see :func:`mmaffseg.ops.affinity_pairs.affinity_pair_labels`):
background-positive, foreground-positive and negative. Each set contributes the mean of
``-log(W)`` (positives) or ``-log(1 - W)`` (negatives) over its pairs, the mean taken over the
whole batch at once; the total is ``bg/4 + fg/4 + neg/2``. As in the reference, 1e-5 guards the
logarithms and the pair counts.

The reference computes the loss of the whole batch (8 images) on one process. Under
DistributedDataParallel (e.g. 4 GPUs x 2 images) the three sums and pair counts are summed over
all processes before the division (:func:`mmaffseg.utils.batch_reduction.global_sum`), so every
shard's pairs weigh as in the single-process batch, and the DDP-averaged gradient equals the
single-process gradient. With one process this changes nothing.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from mmaffseg.utils.batch_reduction import global_sum

from ...ops.precision import float32_math


def affinity_pair_loss(aff: Tensor,
                       bg_pos: Tensor,
                       fg_pos: Tensor,
                       neg: Tensor,
                       eps: float = 1e-5,
                       reduce_across_ranks: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
    """The three loss terms (background-positive, foreground-positive, negative).

    Args:
        aff (Tensor): Affinities in (0, 1], any shape, e.g. ``(B, K, P)``.
        bg_pos (Tensor): {0, 1} mask of background-positive pairs, shaped like ``aff``.
        fg_pos (Tensor): {0, 1} mask of foreground-positive pairs, shaped like ``aff``.
        neg (Tensor): {0, 1} mask of negative pairs, shaped like ``aff``.
        eps (float): Guard added inside the logarithms and to the pair counts. Default: 1e-5.
        reduce_across_ranks (bool): Sum the three sums and counts over all processes of the
            default process group before dividing (the whole distributed batch, as the
            reference's single-process batch); no effect with one process. A collective
            operation then: every rank must call the loss. Default: True.

    Returns:
        tuple[Tensor, Tensor, Tensor]: Scalar ``bg``, ``fg`` and ``neg`` terms.
    """
    for name, mask in (('bg_pos', bg_pos), ('fg_pos', fg_pos), ('neg', neg)):
        if mask.shape != aff.shape:
            raise ValueError(f'{name} must have the shape of aff {tuple(aff.shape)}, got '
                             f'{tuple(mask.shape)}')
    pos_log = torch.log(aff + eps)
    neg_log = torch.log(1. + eps - aff)
    pairs = ((bg_pos, pos_log), (fg_pos, pos_log), (neg, neg_log))
    sums = torch.stack([(-mask * log).sum() for mask, log in pairs])
    counts = torch.stack([mask.sum() for mask, _ in pairs]).detach().to(sums.dtype)
    if reduce_across_ranks:  # one all-reduce for the six numbers
        sums, counts = global_sum(torch.cat([sums, counts])).split(3)
        counts = counts.detach()
    terms = sums / (counts + eps)
    return tuple(terms.unbind())


@MODELS.register_module()
class AffinityPairLoss(nn.Module):
    """Weighted sum of the AffinityNet loss terms.

    Args:
        term_weights (Sequence[float]): Weights of the bg, fg and neg terms.
            Default: (0.25, 0.25, 0.5).
        loss_weight (float): Multiplier of the total. Default: 1.0.
        loss_name (str): Key in the loss dict; keep the ``loss_`` prefix so that mmseg adds it
            to the total. Default: 'loss_aff'.
        reduce_across_ranks (bool): Normalise by the pair counts of the whole distributed batch
            (see :func:`affinity_pair_loss`). Default: True.
    """

    def __init__(self,
                 term_weights: Sequence[float] = (0.25, 0.25, 0.5),
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_aff',
                 reduce_across_ranks: bool = True):
        super().__init__()
        if len(term_weights) != 3:
            raise ValueError(f'term_weights needs 3 values (bg, fg, neg), got {term_weights}')
        self.term_weights = tuple(term_weights)
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.reduce_across_ranks = reduce_across_ranks

    @float32_math  # 1 + 1e-5 rounds to 1 in half precision: log(0) for a negative pair
    def terms(self, aff: Tensor, bg_pos: Tensor, fg_pos: Tensor,
              neg: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The unweighted terms; see :func:`affinity_pair_loss`."""
        return affinity_pair_loss(aff, bg_pos, fg_pos, neg,
                                  reduce_across_ranks=self.reduce_across_ranks)

    def forward(self, aff: Tensor, bg_pos: Tensor, fg_pos: Tensor, neg: Tensor) -> Tensor:
        """Loss of affinities ``aff`` against the three pair masks (all the same shape)."""
        terms = self.terms(aff, bg_pos, fg_pos, neg)
        return self.loss_weight * sum(w * t for w, t in zip(self.term_weights, terms))

    @property
    def loss_name(self) -> str:
        return self._loss_name
