# Copyright (c) mmaffseg contributors. All rights reserved.
import math

import pytest
import torch

from mmaffseg.models.losses import (
    InstanceEmbeddingLoss,
    instance_embedding_loss,
    instance_size_weights,
    sample_instance_points,
)


def _brute_force(points, instance, point_weight):
    """Double loop over pairs, float64, the paper's formula with explicit sigma."""
    points = points.double()
    num = len(points)
    total, norm = 0.0, 0.0
    for p in range(num):
        for q in range(num):
            if p == q:
                continue
            w = (point_weight[p].item() + point_weight[q].item()) / 2
            d2 = float(((points[p] - points[q])**2).sum())
            sigma = 2 / (1 + math.exp(d2))
            if instance[p] == instance[q]:
                cost = -math.log(sigma)
            else:
                cost = -math.log(1 - sigma)
            total += w * cost
            norm += w
    return total / norm


def test_loss_equals_brute_force_with_weights():
    g = torch.Generator().manual_seed(0)
    points = torch.randn(9, 4, generator=g)
    instance = torch.tensor([0, 0, 0, 3, 3, 5, 5, 5, 5])
    weight = torch.tensor([1 / 50] * 3 + [1 / 7] * 2 + [1 / 12] * 4)
    ours = instance_embedding_loss(points.double(), instance, weight.double())
    assert ours.item() == pytest.approx(_brute_force(points, instance, weight), rel=1e-9)


def test_module_equals_brute_force_on_a_tiny_map():
    g = torch.Generator().manual_seed(1)
    inst = torch.tensor([[0, 0, 0, 1], [0, 2, 2, 1], [255, 2, 2, 1]])
    emb = torch.randn(1, 3, 3, 4, generator=g, dtype=torch.float64)
    loss = InstanceEmbeddingLoss(num_points=3)
    points = loss.sample_points(inst[None], generator=torch.Generator().manual_seed(2))
    index, instance = points[0]
    assert instance.tolist() == inst.reshape(-1)[index].tolist()
    assert sorted(instance.tolist()) == [0] * 3 + [1] * 3 + [2] * 3  # K per instance
    assert 8 not in index.tolist()  # the void pixel is never drawn
    sizes = {0: 4, 1: 3, 2: 4}
    weight = torch.tensor([1 / sizes[i] for i in instance.tolist()])
    torch.testing.assert_close(instance_size_weights(inst, instance), weight)
    expected = _brute_force(emb[0].flatten(1).t()[index], instance, weight)
    value = loss(emb, inst[None], points)
    assert value.item() == pytest.approx(expected, rel=1e-9)
    # uniform weights when size weighting is off
    uniform = InstanceEmbeddingLoss(num_points=3, size_weighting=False)(emb, inst[None], points)
    expected = _brute_force(emb[0].flatten(1).t()[index], instance, torch.ones(9))
    assert uniform.item() == pytest.approx(expected, rel=1e-9)


def test_gradients_are_finite_for_coinciding_points():
    # two instances with identical embeddings: log(1 - sigma) would be log 0
    emb = torch.zeros(1, 8, 2, 2, requires_grad=True)
    inst = torch.tensor([[[0, 0], [1, 1]]])
    loss = InstanceEmbeddingLoss(num_points=4)(emb, inst)
    assert torch.isfinite(loss) and loss.item() > 5
    loss.backward()
    assert torch.isfinite(emb.grad).all()


def test_single_instance_and_empty_images():
    emb = torch.randn(3, 4, 5, 6, requires_grad=True)
    inst = torch.zeros(3, 5, 6, dtype=torch.long)
    inst[1] = 255  # all void
    inst[2, :2] = 255
    loss_fn = InstanceEmbeddingLoss(num_points=5)
    points = loss_fn.sample_points(inst)
    assert points[1] is None and len(points[0][0]) == 5
    loss = loss_fn(emb, inst, points)
    assert torch.isfinite(loss) and loss.item() > 0  # same-instance pairs still pull together
    loss.backward()
    assert torch.isfinite(emb.grad).all()
    assert emb.grad[1].abs().sum() == 0
    empty = loss_fn(emb, torch.full_like(inst, 255))
    assert empty.item() == 0 and empty.requires_grad


def test_sample_instance_points_counts():
    inst = torch.tensor([[0, 1, 1], [4, 4, 255]])
    index, instance = sample_instance_points(inst, 7, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(instance).tolist() == [7, 7, 0, 0, 7]
    assert sample_instance_points(torch.full((2, 2), 255), 3) is None


def test_errors():
    with pytest.raises(ValueError, match='num_points must be >= 1'):
        InstanceEmbeddingLoss(num_points=0)
    with pytest.raises(ValueError, match='resize the maps'):
        InstanceEmbeddingLoss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 3, dtype=torch.long))
