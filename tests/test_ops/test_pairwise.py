# Copyright (c) mmaffseg contributors. All rights reserved.
"""Pairwise similarity / squared-distance helpers against per-pair loops and torch.cdist."""
import pytest
import torch

from mmaffseg.ops.pairwise import (
    flatten_spatial,
    pairwise_cosine_similarity,
    pairwise_squared_distances,
)


def test_cosine_similarity_matches_per_pair_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    sim = pairwise_cosine_similarity(x, y)
    assert sim.shape == (2, 5, 4)
    for b in range(2):
        for i in range(5):
            for j in range(4):
                ref = torch.dot(x[b, i], y[b, j]) / (x[b, i].norm() * y[b, j].norm())
                assert sim[b, i, j].item() == pytest.approx(ref.item(), abs=1e-12)
    self_sim = pairwise_cosine_similarity(x)
    torch.testing.assert_close(torch.diagonal(self_sim, dim1=1, dim2=2),
                               torch.ones(2, 5, dtype=torch.float64))


def test_cosine_similarity_of_zero_vector_is_zero_not_nan():
    x = torch.tensor([[0., 0.], [1., 0.], [0., 2.]])
    sim = pairwise_cosine_similarity(x)
    assert torch.isfinite(sim).all()
    assert sim[0].abs().sum() == 0
    assert sim[1, 2] == 0 and sim[2, 2] == pytest.approx(1.0)


def test_squared_distances_match_cdist():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 7, 6, generator=g, dtype=torch.float64)
    y = torch.randn(3, 9, 6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(pairwise_squared_distances(x, y), torch.cdist(x, y)**2)
    sq_self = pairwise_squared_distances(x)
    assert (sq_self >= 0).all()
    torch.testing.assert_close(torch.diagonal(sq_self, dim1=1, dim2=2),
                               torch.zeros(3, 7, dtype=torch.float64))


def test_flatten_spatial_is_row_major_and_checks_rank():
    feats = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).view(2, 3, 2, 4)
    points = flatten_spatial(feats)
    assert points.shape == (2, 8, 3)
    torch.testing.assert_close(points[1, 5], feats[1, :, 1, 1])
    with pytest.raises(ValueError, match=r'\(B, C, H, W\) feature map, got shape \(3, 2, 4\)'):
        flatten_spatial(feats[0])
