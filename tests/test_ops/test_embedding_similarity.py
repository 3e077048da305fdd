# Copyright (c) mmaffseg contributors. All rights reserved.
import math

import pytest
import torch

from mmaffseg.ops.embedding_similarity import (
    grow_masks,
    log_dissimilarity,
    log_similarity,
    similarity,
)


def _direct(d2):
    d2 = torch.as_tensor(d2, dtype=torch.float64)
    return 2 / (1 + torch.exp(d2))


@pytest.mark.parametrize('d2', [1e-3, 0.1, 0.5, 1.0, 3.0, 10.0, 30.0])
def test_similarity_and_logs_match_the_definition(d2):
    sigma = _direct(d2)
    x = torch.tensor([d2], dtype=torch.float64)
    torch.testing.assert_close(similarity(x)[0], sigma)
    torch.testing.assert_close(log_similarity(x)[0], torch.log(sigma))
    torch.testing.assert_close(log_dissimilarity(x)[0], torch.log(1 - sigma), rtol=1e-9,
                               atol=1e-12)


def test_logs_stay_finite_at_the_extremes():
    x = torch.tensor([0.0, 1e-12, 1e4, 1e30], requires_grad=True)
    out = torch.stack([log_similarity(x), log_dissimilarity(x)])
    assert torch.isfinite(out).all()
    assert log_similarity(x)[0] == 0  # sigma(p, p) = 1
    # clamp at 1e-6: log(1 - sigma) ~ log(1e-6 / 2)
    assert abs(log_dissimilarity(x)[0].item() - math.log(0.5e-6)) < 1e-3
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    # the large-distance tail is linear: -log sigma ~ d2 - log 2
    assert abs(-log_similarity(torch.tensor([50.0]))[0].item() - (50 - math.log(2))) < 1e-5


def test_grow_masks_thresholds():
    # pixels at squared distances spanning the four default taus
    d2 = torch.tensor([[0.0, 0.15, 0.4, 1.0, 1.5, 3.0]])
    sim = similarity(d2)
    taus = torch.tensor([0.25, 0.5, 0.75, 0.9])
    masks = grow_masks(sim, taus)  # (T, N, P)
    assert masks.shape == (4, 1, 6)
    # sigma >= tau  <=>  d2 <= log(2 / tau - 1)
    for t, tau in enumerate(taus.tolist()):
        expected = d2[0] <= math.log(2 / tau - 1)
        assert torch.equal(masks[t, 0], expected)
    counts = masks.sum(-1)[:, 0].tolist()
    assert counts == [5, 4, 3, 2]  # higher tau, smaller mask
    assert masks[:, 0, 0].all()  # the seed itself is always in its mask
