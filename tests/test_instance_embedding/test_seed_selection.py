# Copyright (c) mmaffseg contributors. All rights reserved.
import pytest
import torch

from mmaffseg.instance_embedding.seed_selection import select_seeds


def _clusters(num_clusters=4, per_cluster=30, dims=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_clusters, dims, generator=g) * 20
    emb = centres.repeat_interleave(per_cluster, 0)
    emb = emb + 0.05 * torch.randn(emb.shape, generator=g)
    labels = torch.arange(num_clusters).repeat_interleave(per_cluster)
    return emb, labels


@pytest.mark.parametrize('batch', [1, 3])
def test_one_seed_per_well_separated_cluster(batch):
    emb, labels = _clusters()
    g = torch.Generator().manual_seed(1)
    seediness = 0.5 + 0.5 * torch.rand(batch, len(emb), generator=g)
    seeds, found = select_seeds(emb.expand(batch, -1, -1), seediness,
                                torch.ones_like(seediness, dtype=torch.bool), num_seeds=4,
                                alpha=0.3)
    assert found.all()
    for b in range(batch):
        assert sorted(labels[seeds[b]].tolist()) == [0, 1, 2, 3]
        # the first seed is the most seedy pixel
        assert seeds[b, 0] == seediness[b].argmax()


def test_without_diversity_seeds_follow_seediness():
    emb, labels = _clusters()
    seediness = torch.linspace(0.1, 0.9, len(emb))[None]  # the last cluster is the seediest
    valid = torch.ones_like(seediness, dtype=torch.bool)
    seeds, _ = select_seeds(emb[None], seediness, valid, num_seeds=4, alpha=0.0)
    assert seeds[0].tolist() == [119, 118, 117, 116]  # all in one cluster
    seeds, _ = select_seeds(emb[None], seediness, valid, num_seeds=4, alpha=0.3)
    assert sorted(labels[seeds[0]].tolist()) == [0, 1, 2, 3]


def test_invalid_pixels_and_running_out():
    emb, _ = _clusters(num_clusters=2, per_cluster=3)
    seediness = torch.rand(1, 6)
    seediness[0, 0] = 1.0
    valid = torch.tensor([[False, True, True, False, False, False]])
    seeds, found = select_seeds(emb[None], seediness, valid, num_seeds=4)
    assert found[0].tolist() == [True, True, False, False]
    assert sorted(seeds[0, :2].tolist()) == [1, 2]
    # identical embeddings: the second copy has log D = -inf and is never chosen
    same = torch.zeros(1, 5, 3)
    seeds, found = select_seeds(same, torch.rand(1, 5), torch.ones(1, 5, dtype=torch.bool), 3)
    assert found[0].tolist() == [True, False, False]


def test_errors():
    with pytest.raises(ValueError, match='expects embedding'):
        select_seeds(torch.zeros(2, 3), torch.zeros(2), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match='num_seeds >= 1'):
        select_seeds(torch.zeros(1, 2, 3), torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool),
                     num_seeds=0)


def test_precomputed_norms_give_the_same_distances():
    from mmaffseg.ops.pairwise import pairwise_squared_distances
    x, y = torch.randn(2, 7, 3), torch.randn(2, 4, 3)
    torch.testing.assert_close(pairwise_squared_distances(x, y, x.pow(2).sum(-1)),
                               pairwise_squared_distances(x, y))
