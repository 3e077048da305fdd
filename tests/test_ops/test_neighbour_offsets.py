# Copyright (c) mmaffseg contributors. All rights reserved.
"""Radius-r pair offsets and indices: golden parity (PSA) and a brute-force enumeration."""
import numpy as np
import pytest
import torch
from golden import assert_close, case_paths, load_case

from mmaffseg.ops.neighbour_offsets import (
    from_window,
    neighbour_offsets,
    neighbour_pairs,
    pair_indices,
)

PAIR_CASES = case_paths('psa', 'pairs_*')


def test_pair_fixtures_exist():
    assert len(PAIR_CASES) >= 2


@pytest.mark.parametrize('path', PAIR_CASES, ids=lambda p: p.split('/')[-1])
def test_pairs_match_reference_exactly(path):
    case = load_case(path)
    radius, size = int(case.inputs['radius']), tuple(int(s) for s in case.inputs['size'])
    ind_from, ind_to = pair_indices(radius, size)
    assert ind_from.dtype == ind_to.dtype == torch.int64
    assert_close(case, 'ind_from', ind_from)
    assert_close(case, 'ind_to', ind_to)
    assert_close(case, 'offsets', np.array(neighbour_offsets(radius), dtype=np.int64))


def brute_force_pairs(radius, height, width):
    """Unordered pairs {p, q} with p a from-pixel and q within radius in the half-plane."""
    pairs = set()
    for y in range(height - radius + 1):
        for x in range(radius - 1, width - radius + 1):
            for qy in range(y, min(height, y + radius)):
                for qx in range(max(0, x - radius + 1), min(width, x + radius)):
                    dy, dx = qy - y, qx - x
                    if (dy > 0 or dx > 0) and dy * dy + dx * dx < radius * radius:
                        pairs.add((y * width + x, qy * width + qx))
    return pairs


@pytest.mark.parametrize('radius,size', [(5, (11, 14)), (3, (6, 9)), (4, (7, 7)),
                                         (5, (5, 9)), (5, (4, 20)), (5, (20, 7)), (2, (3, 3))])
def test_pairs_are_each_unordered_pair_once(radius, size):
    ind_from, ind_to = pair_indices(radius, size)
    k = len(neighbour_offsets(radius))
    hf, wf = from_window(radius, size)
    assert ind_from.numel() == hf * wf and ind_to.numel() == k * hf * wf
    ours = list(zip(ind_from.repeat(k).tolist(), ind_to.tolist()))
    assert len(set(ours)) == len(ours)
    assert set(ours) == brute_force_pairs(radius, *size)


def test_offset_counts():
    assert len(neighbour_offsets(5)) == 34
    assert len(neighbour_offsets(3)) == 12
    with pytest.raises(ValueError, match='radius must be >= 2'):
        neighbour_offsets(1)


def test_neighbour_pairs_gathers_the_indexed_values():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 13, generator=g)
    x_from, x_to = neighbour_pairs(x, 4)
    ind_from, ind_to = pair_indices(4, (9, 13))
    flat = x.flatten(2)
    torch.testing.assert_close(x_from[:, :, 0], flat[..., ind_from], rtol=0, atol=0)
    torch.testing.assert_close(x_to, flat[..., ind_to].view(2, 3, -1, ind_from.numel()),
                               rtol=0, atol=0)


def test_too_small_grid_has_no_pairs():
    ind_from, ind_to = pair_indices(5, (8, 8))  # a 64x64 image at stride 8
    assert ind_from.numel() == 0 and ind_to.numel() == 0
    x_from, x_to = neighbour_pairs(torch.zeros(1, 2, 3, 4), 5)
    assert x_from.shape == (1, 2, 1, 0) and x_to.shape == (1, 2, 34, 0)
