# Copyright (c) mmaffseg contributors. All rights reserved.
"""The dense random walk of the PSA reference code, kept as a baseline for tests and benchmarks.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

The reference materialises the ``N x N`` affinity matrix of the grid (N = H * W), raises it to
``beta``, normalises its columns and squares it ``logt`` times. Memory is O(N^2) (68.7 GB per
float32 matrix for the 256 x 512 grid of a 1024 x 2048 image at stride 4) and time O(N^3 logt).
Use :func:`mmaffseg.wsss.random_walk.random_walk` for real work; this module exists to check it.
"""
import torch
from torch import Tensor

from mmaffseg.ops.neighbour_offsets import neighbour_offsets, pair_indices
from mmaffseg.ops.psa_defaults import PSA_DEFAULTS


def dense_affinity_matrix(aff: Tensor, size: tuple, radius: int = PSA_DEFAULTS.radius) -> Tensor:
    """Dense symmetric affinity matrix with a unit diagonal, from one image's pair affinities.

    Args:
        aff (Tensor): ``(K, P)`` or ``(1, K, P)`` pair affinities on an ``H x W`` grid.
        size (tuple[int, int]): The grid ``(H, W)``.
        radius (int): Pair radius. Default: PSA's ``radius``.

    Returns:
        Tensor: ``(N, N)``, N = H * W: ``aff`` at (from, to) and (to, from), 1 on the diagonal.
    """
    aff = aff.reshape(len(neighbour_offsets(radius)), -1)
    ind_from, ind_to = pair_indices(radius, size, aff.device)
    n = size[0] * size[1]
    dense = torch.eye(n, dtype=aff.dtype, device=aff.device)
    ind_from = ind_from.repeat(aff.shape[0])
    dense[ind_from, ind_to] = aff.flatten()
    dense[ind_to, ind_from] = aff.flatten()
    return dense


def dense_transition(aff_dense: Tensor, beta: float = PSA_DEFAULTS.rw_beta,
                     logt: int = PSA_DEFAULTS.rw_logt) -> Tensor:
    """``T^(2^logt)`` with ``T = aff_dense^beta`` normalised by its column sums.

    Args:
        aff_dense (Tensor): ``(N, N)`` from :func:`dense_affinity_matrix`.
        beta (float): Affinity power. Default: PSA's ``rw_beta``.
        logt (int): Number of squarings. Default: PSA's ``rw_logt``.

    Returns:
        Tensor: ``(N, N)`` column-stochastic matrix; scores propagate as ``x (C, N) @ T``.
    """
    trans = aff_dense.pow(beta)
    trans = trans / trans.sum(dim=0, keepdim=True)
    for _ in range(logt):
        trans = trans @ trans
    return trans


def dense_random_walk(scores: Tensor, aff: Tensor, radius: int = PSA_DEFAULTS.radius,
                      beta: float = PSA_DEFAULTS.rw_beta,
                      logt: int = PSA_DEFAULTS.rw_logt) -> Tensor:
    """Dense counterpart of :func:`mmaffseg.wsss.random_walk.random_walk`, one image.

    Args:
        scores (Tensor): ``(1, C, H, W)`` or ``(C, H, W)`` scores on the affinity grid.
        aff (Tensor): ``(1, K, P)`` or ``(K, P)`` pair affinities of that grid.
        radius (int): Pair radius. Default: PSA's ``radius``.
        beta (float): Affinity power. Default: PSA's ``rw_beta``.
        logt (int): Number of squarings. Default: PSA's ``rw_logt``.

    Returns:
        Tensor: Propagated scores, shaped like ``scores``.
    """
    size = tuple(scores.shape[-2:])
    trans = dense_transition(dense_affinity_matrix(aff, size, radius), beta, logt)
    channels = scores.shape[-3]
    return (scores.reshape(channels, -1) @ trans).view(scores.shape)
