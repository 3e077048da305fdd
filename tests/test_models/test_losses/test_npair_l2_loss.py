# Copyright (c) mmaffseg contributors. All rights reserved.
import math

import numpy as np
import pytest
import torch
from mmseg.registry import MODELS

from mmaffseg.models.losses import NPairL2Loss, npair_l2_pair_loss, sample_segment_pixels


def _paper_loss(points, segment, scale=None, pos_w=1.0, neg_w=1.0):
    """The supplementary's L = 1/|P| * sum over all pairs p, q in P, pair by pair."""
    n, c = points.shape
    scale = 1.0 / c if scale is None else scale
    points, segment = points.tolist(), segment.tolist()
    total = 0.0
    for p in range(n):
        for q in range(n):
            d = scale * math.sqrt(sum((points[p][k] - points[q][k])**2 for k in range(c)))
            if segment[p] == segment[q]:
                total += pos_w * math.log((1 + math.exp(d)) / 2)
            else:
                total += neg_w * math.log((1 + math.exp(-d)) / 2)
    return total / n  # 1 / |P|


def _official_sigmoid_loss(points, segment, temperature=64.0, pos_w=3.0, neg_w=1.0):
    """The official code's form: reduce_mean over the N x N pair matrix, pair by pair."""
    n, c = points.shape
    points, segment = points.tolist(), segment.tolist()
    total = 0.0
    for p in range(n):
        for q in range(n):
            sq = sum((points[p][k] - points[q][k])**2 for k in range(c))
            sigma = 2 / (1 + math.exp(sq / temperature))
            if segment[p] == segment[q]:
                total += -pos_w * math.log(sigma)
            else:
                total += -neg_w * math.log(1 - sigma)
    return total / (n * n)  # the mean


@pytest.mark.parametrize('form,kwargs', [
    ('paper', {}),
    ('paper', dict(distance_scale=0.7, pos_weight=2.0, neg_weight=0.5)),
    ('sigmoid', {}),
    ('sigmoid', dict(temperature=3.0, pos_weight=1.5, neg_weight=2.0)),
])
def test_pair_loss_equals_each_sources_formula(form, kwargs):
    gen = torch.Generator().manual_seed(0)
    points = 2 * torch.randn(3, 7, 5, generator=gen, dtype=torch.float64)  # 3 sets, N=7, C=5
    segment = torch.randint(0, 3, (3, 7), generator=gen)
    got = npair_l2_pair_loss(points, segment, form, **kwargs)
    for r in range(3):
        if form == 'paper':
            expected = _paper_loss(points[r], segment[r], kwargs.get('distance_scale'),
                                   kwargs.get('pos_weight', 1.0), kwargs.get('neg_weight', 1.0))
        else:
            expected = _official_sigmoid_loss(points[r], segment[r],
                                              kwargs.get('temperature', 64.0),
                                              kwargs.get('pos_weight', 3.0),
                                              kwargs.get('neg_weight', 1.0))
        assert got[r].item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_normalization_override_switches_between_one_over_n_and_the_mean():
    gen = torch.Generator().manual_seed(1)
    points = torch.randn(9, 4, generator=gen, dtype=torch.float64)
    segment = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    paper = npair_l2_pair_loss(points, segment, 'paper')
    assert paper.item() == pytest.approx(_paper_loss(points, segment), rel=1e-9)
    mean = npair_l2_pair_loss(points, segment, 'paper', normalization='pairs')
    assert mean.item() == pytest.approx(_paper_loss(points, segment) / 9, rel=1e-9)
    summed = npair_l2_pair_loss(points, segment, 'sigmoid', normalization='points')
    assert summed.item() == pytest.approx(9 * _official_sigmoid_loss(points, segment), rel=1e-9)
    with pytest.raises(ValueError, match="normalization must be one of .*'sum'"):
        npair_l2_pair_loss(points, segment, normalization='sum')
    with pytest.raises(ValueError, match="NPairL2Loss normalization must be one of"):
        NPairL2Loss(normalization='sum')


def test_pair_loss_rejects_unknown_form():
    with pytest.raises(ValueError, match="form must be one of .*'triplet'"):
        npair_l2_pair_loss(torch.zeros(2, 3), torch.zeros(2), form='triplet')


def _labels():
    labels = torch.full((12, 10), 255)
    labels[:6, :] = 4  # 60 pixels
    labels[6:, :3] = 9  # 18 pixels
    labels[6:, 3:5] = 1  # 12 pixels
    labels[11, 9] = 7  # a single pixel
    return labels


def test_sampling_is_balanced_and_skips_ignore():
    labels = _labels()
    index, segment = sample_segment_pixels(labels, 3, 50, num_resamples=20,
                                           generator=torch.Generator().manual_seed(1))
    assert index.shape == segment.shape == (20, 150)
    flat = labels.reshape(-1)
    assert torch.equal(flat[index], segment)  # every drawn pixel lies in its segment
    assert (segment != 255).all()
    seen = set()
    for r in range(20):
        blocks = segment[r].view(3, 50)
        assert (blocks == blocks[:, :1]).all()  # 50 pixels per segment, grouped
        assert len(set(blocks[:, 0].tolist())) == 3  # three distinct segments
        seen.update(blocks[:, 0].tolist())
    assert seen == {1, 4, 7, 9}  # every segment gets drawn, whatever its size


def test_sampling_is_deterministic_with_a_seed():
    labels = _labels()
    a = sample_segment_pixels(labels, 3, 40, 4, generator=torch.Generator().manual_seed(5))
    b = sample_segment_pixels(labels, 3, 40, 4, generator=torch.Generator().manual_seed(5))
    c = sample_segment_pixels(labels, 3, 40, 4, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_sampling_uses_all_segments_when_fewer_than_requested():
    labels = torch.tensor([[0, 0, 1], [1, 255, 255]])
    index, segment = sample_segment_pixels(labels, 3, 4, 2)
    assert segment.shape == (2, 8) and set(segment.unique().tolist()) == {0, 1}
    assert sample_segment_pixels(torch.full((3, 3), 2), 3, 4) is None
    assert sample_segment_pixels(torch.full((3, 3), 255), 3, 4) is None


@pytest.mark.parametrize('form', ['paper', 'sigmoid'])
def test_single_segment_and_empty_images_give_zero_loss(form):
    loss = NPairL2Loss(num_pixels=20, num_resamples=2, form=form)
    emb = torch.randn(2, 8, 6, 7, requires_grad=True)
    labels = torch.stack([torch.full((6, 7), 3), torch.full((6, 7), 255)])
    value = loss(emb, labels)
    assert value.item() == 0.0
    value.backward()
    assert torch.isfinite(emb.grad).all() and (emb.grad == 0).all()


@pytest.mark.parametrize('form', ['paper', 'sigmoid'])
def test_loss_averages_contributing_images_only(form):
    loss = NPairL2Loss(num_pixels=30, num_resamples=3, form=form, loss_weight=2.0)
    emb = torch.randn(2, 8, 12, 10)
    labels = torch.stack([_labels(), torch.full((12, 10), 255)])
    both = loss(emb, labels, generator=torch.Generator().manual_seed(3))
    alone = loss(emb[:1], labels[:1], generator=torch.Generator().manual_seed(3))
    assert both.item() == pytest.approx(alone.item())
    index, segment = sample_segment_pixels(_labels(), 3, 30, 3,
                                           generator=torch.Generator().manual_seed(3))
    points = emb[0].flatten(1).t()[index].double()
    brute = _paper_loss if form == 'paper' else _official_sigmoid_loss
    expected = 2.0 * sum(brute(points[r], segment[r]) for r in range(3)) / 3  # mean of draws
    assert alone.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('form', ['paper', 'sigmoid'])
def test_gradients_finite_with_duplicate_pixels(form):
    # A one-pixel segment: all its draws are the same pixel (zero distances).
    loss = NPairL2Loss(num_pixels=25, num_resamples=2, form=form)
    emb = torch.randn(1, 4, 12, 10, requires_grad=True)
    value = loss(emb, _labels()[None])
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(emb.grad).all()
    assert emb.grad.abs().sum() > 0


def test_training_separates_segments():
    # Free per-pixel features (seeded), seeded draws, plain SGD at lr 1 on the paper's loss
    # (D = |f_p - f_q|): after 40 steps every labelled pixel is nearer to all pixels of its own
    # segment than to any pixel of another segment, with a margin of 0.5, which the random start
    # is far from (other seeds end with margins of 0.9-1.7). With the mean over the N^2 pairs
    # (normalization='pairs', the old behaviour) the gradients are N = 60 times smaller and the
    # same 40 steps leave the segments mixed.
    labels = _labels()

    def train(normalization):
        emb = torch.randn(1, 4, 12, 10, generator=torch.Generator().manual_seed(0))
        emb.requires_grad_(True)
        loss = NPairL2Loss(num_pixels=20, num_resamples=2, distance_scale=1.0,
                           normalization=normalization)
        gen = torch.Generator().manual_seed(0)
        opt = torch.optim.SGD([emb], lr=1.0)
        values = []
        for _ in range(40):
            opt.zero_grad()
            value = loss(emb, labels[None], generator=gen)
            value.backward()
            opt.step()
            values.append(value.item())
        return emb.detach(), values

    def farthest_same_and_nearest_other(emb):
        keep = (labels != 255).flatten()
        feats = emb[0].flatten(1).t()[keep]
        seg = labels.flatten()[keep]
        dist = torch.cdist(feats, feats)
        same = seg[:, None] == seg[None, :]
        return dist[same].max().item(), dist[~same].min().item()

    start = farthest_same_and_nearest_other(
        torch.randn(1, 4, 12, 10, generator=torch.Generator().manual_seed(0)))
    assert start[0] > start[1] + 3  # the random start is mixed
    emb, values = train(None)  # the paper's 1/|P|
    same, other = farthest_same_and_nearest_other(emb)
    assert same < other - 0.5
    assert sum(values[-5:]) / 5 < values[0] - 5
    same, other = farthest_same_and_nearest_other(train('pairs')[0])
    assert same > other  # the 1/N^2 mean at the same lr has not separated anything


def test_registered_and_validates_arguments():
    loss = MODELS.build(dict(type='NPairL2Loss', num_pixels=10, form='sigmoid'))
    assert isinstance(loss, NPairL2Loss) and loss.loss_name == 'loss_npair'
    with pytest.raises(ValueError, match='num_instances must be >= 2'):
        NPairL2Loss(num_instances=1)
    with pytest.raises(ValueError, match="form must be one of"):
        NPairL2Loss(form='contrastive')
    with pytest.raises(ValueError, match=r'same size, got \(1, 4, 5, 5\) and \(1, 6, 6\)'):
        loss(torch.zeros(1, 4, 5, 5), torch.zeros(1, 6, 6, dtype=torch.long))


def _official_trains_on(labelmap: np.ndarray, ninst: int = 3) -> bool:
    """The official training loop's test (iyah4888/SIGGRAPH18SSS, ``hc_deeplab.train``): an
    image is skipped when its label map holds fewer than ``NINST`` distinct values."""
    return not len(np.unique(labelmap)) < ninst


@pytest.mark.parametrize('num_segments', [1, 2, 3, 4, 5])
def test_images_contribute_by_the_official_rule(num_segments):
    """Label maps without ignored pixels (where the official count and ours agree): an image
    contributes to the default loss exactly when the official loop would train on it."""
    gen = torch.Generator().manual_seed(num_segments)
    labels = torch.randint(0, num_segments, (1, 12, 10), generator=gen)
    labels[0, 0, :num_segments] = torch.arange(num_segments)  # every id present
    emb = torch.randn(1, 4, 12, 10, generator=gen)
    value = NPairL2Loss(num_pixels=5, num_resamples=2)(emb, labels, generator=gen)
    assert (value.item() != 0) == _official_trains_on(labels[0].numpy())
    # min_segments=2 also trains on two-segment images
    loose = NPairL2Loss(num_pixels=5, num_resamples=2, min_segments=2)(emb, labels)
    assert (loose.item() != 0) == (num_segments >= 2)


def test_min_segments_is_validated():
    assert NPairL2Loss(num_instances=4).min_segments == 4
    with pytest.raises(ValueError, match='min_segments must be an int >= 2'):
        NPairL2Loss(min_segments=1)
