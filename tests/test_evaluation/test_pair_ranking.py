# Copyright (c) mmaffseg contributors. All rights reserved.
import math

import pytest
import torch
from mmseg.registry import METRICS

from mmaffseg.evaluation import PairRankingMetric, pair_ranking_accuracy, ranking_accuracy


def test_ranking_accuracy_equals_brute_force_with_ties():
    gen = torch.Generator().manual_seed(0)
    same = torch.randint(0, 6, (40, ), generator=gen).float()  # many ties
    diff = torch.randint(2, 9, (55, ), generator=gen).float()
    wins = sum(1.0 if s < d else 0.5 if s == d else 0.0 for s in same for d in diff)
    assert ranking_accuracy(same, diff) == pytest.approx(wins / (40 * 55), abs=1e-12)
    assert math.isnan(ranking_accuracy(same[:0], diff))


def _labels():
    labels = torch.zeros(10, 12, dtype=torch.long)
    labels[:, 6:] = 1
    labels[5:, 6:] = 2
    labels[0, :3] = 255
    return labels


def test_perfect_random_and_degenerate_embeddings():
    labels = _labels()
    perfect = torch.nn.functional.one_hot(labels.clamp_max(2), 3).permute(2, 0, 1).float()
    gen = torch.Generator().manual_seed(0)
    assert pair_ranking_accuracy(perfect, labels, generator=gen) == 1.0
    noise = torch.randn(8, 10, 12, generator=gen)
    assert abs(pair_ranking_accuracy(noise, labels, generator=gen) - 0.5) < 0.05
    inverted = -perfect  # same distances: still perfect
    assert pair_ranking_accuracy(inverted, labels, generator=gen) == 1.0
    assert math.isnan(pair_ranking_accuracy(noise, torch.zeros(10, 12, dtype=torch.long)))
    with pytest.raises(ValueError, match='same size'):
        pair_ranking_accuracy(noise, labels[:5])


def test_subsampling_is_reproducible_and_skips_ignore():
    labels = _labels()
    emb = torch.randn(4, 10, 12, generator=torch.Generator().manual_seed(1))
    a = pair_ranking_accuracy(emb, labels, 30, generator=torch.Generator().manual_seed(7))
    b = pair_ranking_accuracy(emb, labels, 30, generator=torch.Generator().manual_seed(7))
    assert a == b
    emb_bad_ignored = emb.clone()
    emb_bad_ignored[:, 0, :3] = 1e6  # ignored pixels must not change the score
    assert pair_ranking_accuracy(emb_bad_ignored, labels, 1000) == \
        pair_ranking_accuracy(emb, labels, 1000)


def test_metric_uses_instances_when_present():
    metric = METRICS.build(dict(type='PairRankingMetric', num_samples=200))
    assert isinstance(metric, PairRankingMetric)
    sem = torch.zeros(1, 10, 12, dtype=torch.long)
    sem[:, :, 6:] = 13  # one class on the right ...
    inst = torch.zeros(1, 10, 12, dtype=torch.long)
    inst[:, :5, 6:] = 1  # ... made of two instances
    inst[:, 5:, 6:] = 2
    parts = inst[0]  # left 0, right-top 1, right-bottom 2
    emb = torch.nn.functional.one_hot(parts, 3).permute(2, 0, 1).float()
    samples = [
        dict(seg_logits=dict(data=emb), gt_sem_seg=dict(data=sem),
             gt_instance_map=dict(data=inst)),
        dict(seg_logits=dict(data=emb), gt_sem_seg=dict(data=sem)),  # semantic only
        dict(seg_logits=dict(data=emb), gt_sem_seg=dict(data=torch.zeros_like(sem))),  # skipped
    ]
    metric.process({}, samples)
    result = metric.compute_metrics(metric.results)
    assert result['num_images'] == 2
    assert metric.results[0] == 1.0  # the embedding separates the two instances
    assert metric.results[1] < 1.0  # but semantically they are one segment
