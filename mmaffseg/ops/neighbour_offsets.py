# Copyright (c) mmaffseg contributors. All rights reserved.
"""Radius-r neighbour pairs on a feature grid, as used by AffinityNet.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

AffinityNet only looks at pixel pairs closer than ``radius`` on the stride-8 grid. Each
unordered pair is listed once through a half-plane of offsets ``(dy, dx)``:
``(0, 1..r-1)`` first, then for ``dy = 1..r-1`` every ``dx`` in ``-(r-1)..(r-1)`` with
``dx^2 + dy^2 < r^2`` (34 offsets for r = 5). A pixel is a "from" pixel when every partner lies
inside the map: rows ``[0, H-r+1)`` and columns ``[r-1, W-r+1)``. All pair tensors in mmaffseg
use the layout ``(..., K, P)``: K offsets in that order, P from-pixels in row-major order. The
affinity head, the affinity labels and the random walk all build their pairs here.
"""
from typing import List, Tuple

import torch
from torch import Tensor


def neighbour_offsets(radius: int) -> List[Tuple[int, int]]:
    """The half-plane ``(dy, dx)`` offsets within ``radius``, in the reference order.

    Args:
        radius (int): Pairs are closer than ``radius`` (Euclidean, in grid cells). Must be >= 2.

    Returns:
        list[tuple[int, int]]: The offsets; 34 of them for radius 5, 12 for radius 3.
    """
    if radius < 2:
        raise ValueError(f'radius must be >= 2 to give any neighbour, got {radius}')
    offsets = [(0, dx) for dx in range(1, radius)]
    offsets += [(dy, dx) for dy in range(1, radius) for dx in range(1 - radius, radius)
                if dx * dx + dy * dy < radius * radius]
    return offsets


def from_window(radius: int, size: Tuple[int, int]) -> Tuple[int, int]:
    """Height and width of the block of "from" pixels (0 when the map is too small)."""
    height, width = size
    return max(height - radius + 1, 0), max(width - 2 * radius + 2, 0)


def neighbour_pairs(x: Tensor, radius: int) -> Tuple[Tensor, Tensor]:
    """Gather both ends of every radius pair from a map.

    Args:
        x (Tensor): A map ``(..., H, W)``: features ``(B, C, H, W)`` or labels ``(B, H, W)``.
        radius (int): Pair radius.

    Returns:
        tuple[Tensor, Tensor]: ``x_from`` of shape ``(..., 1, P)`` and ``x_to`` of shape
        ``(..., K, P)``: the values at the from-pixels and at their partner under each offset.
    """
    hf, wf = from_window(radius, x.shape[-2:])
    r = radius - 1
    x_from = x[..., :hf, r:r + wf].flatten(-2).unsqueeze(-2)
    x_to = torch.stack([x[..., dy:dy + hf, r + dx:r + dx + wf].flatten(-2)
                        for dy, dx in neighbour_offsets(radius)], dim=-2)
    return x_from, x_to


def pair_indices(radius: int, size: Tuple[int, int],
                 device: torch.device = None) -> Tuple[Tensor, Tensor]:
    """Flat (row-major) indices of the radius pairs on an ``H x W`` grid.

    Same values as the reference ``get_indices_of_pairs(radius, size)``.

    Args:
        radius (int): Pair radius.
        size (tuple[int, int]): ``(H, W)`` of the grid.
        device (torch.device, optional): Where to create the indices. Defaults to CPU.

    Returns:
        tuple[Tensor, Tensor]: int64 ``ind_from`` of shape ``(P,)`` and ``ind_to`` of shape
        ``(K * P,)``, offset-major (block k holds the partner of every from-pixel under
        offset k).
    """
    grid = torch.arange(size[0] * size[1], device=device).view(1, *size)
    ind_from, ind_to = neighbour_pairs(grid, radius)
    return ind_from.reshape(-1), ind_to.reshape(-1)
