# Copyright (c) mmaffseg contributors. All rights reserved.
"""The similarity of two pixel embeddings, its logarithms, and the masks grown from seed pixels.

Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance Segmentation via
Deep Metric Learning", arXiv:1703.10277, 2017.

Two pixels with embeddings ``e_p`` and ``e_q`` and squared distance ``d2 = |e_p - e_q|^2`` have
the similarity::

    sigma(p, q) = 2 / (1 + exp(d2)) = 2 * sigmoid(-d2)

which is 1 for identical embeddings and falls towards 0 as they move apart. The mask grown from a
seed ``p`` at threshold ``tau`` is ``m(p, tau) = {q : sigma(p, q) >= tau}``.

Every function takes ``d2`` (e.g. from
:func:`~mmaffseg.ops.pairwise.pairwise_squared_distances`), never the embeddings, so
the losses, the training targets and the inference all share one definition.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor

_LOG2 = math.log(2.0)


def similarity(sq_dist: Tensor) -> Tensor:
    """``sigma = 2 / (1 + exp(d2))`` of squared embedding distances.

    Args:
        sq_dist (Tensor): Squared distances ``d2 >= 0``, any shape.

    Returns:
        Tensor: Similarities in (0, 1], same shape.
    """
    return 2 * torch.sigmoid(-sq_dist)


def log_similarity(sq_dist: Tensor) -> Tensor:
    """``log sigma = log 2 - softplus(d2)``, finite for every ``d2 >= 0``.

    Args:
        sq_dist (Tensor): Squared distances ``d2 >= 0``, any shape.

    Returns:
        Tensor: ``log sigma`` in (-inf, 0], same shape (0 at ``d2 = 0``).
    """
    return _LOG2 - F.softplus(sq_dist)


def log_dissimilarity(sq_dist: Tensor, min_sq_dist: float = 1e-6) -> Tensor:
    """``log(1 - sigma) = log(tanh(d2 / 2))``, clamped so it never reaches ``log 0``.

    ``1 - sigma = (1 - exp(-d2)) / (1 + exp(-d2))``, so ``log(1 - sigma) = log(-expm1(-d2)) -
    softplus(-d2)``: ``expm1`` keeps full precision for small ``d2`` and both terms go to 0 for
    large ``d2``. ``d2`` is clamped at ``min_sq_dist`` first (pairs closer than that get no
    gradient), which bounds the result below by about ``log(min_sq_dist / 2)``
    (-14.5 for the default).

    Args:
        sq_dist (Tensor): Squared distances ``d2 >= 0``, any shape.
        min_sq_dist (float): Lower clamp of ``d2``. Defaults to 1e-6.

    Returns:
        Tensor: ``log(1 - sigma)`` (negative, finite), same shape.
    """
    d2 = sq_dist.clamp_min(min_sq_dist)
    return torch.log(-torch.expm1(-d2)) - F.softplus(-d2)


def grow_masks(sim: Tensor, taus: Tensor) -> Tensor:
    """Masks ``m(p, tau) = {q : sigma(p, q) >= tau}`` for every seed and threshold.

    Args:
        sim (Tensor): Similarities of seeds to pixels, shape (..., N, P).
        taus (Tensor): Thresholds, shape (T,).

    Returns:
        Tensor: Bool masks of shape (..., T, N, P).
    """
    return sim.unsqueeze(-3) >= taus.to(sim).view(-1, 1, 1)
