# Copyright (c) mmaffseg contributors. All rights reserved.
import pytest
import torch
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.instance_embedding import seed_class_targets


def _head(**kwargs):
    cfg = dict(type='SeedinessHead', in_channels=4, channels=8, num_classes=3)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_output_shape_one_classifier_per_tau():
    head = _head()
    assert head.taus.tolist() == pytest.approx([0.25, 0.5, 0.75, 0.9])
    out = head([torch.randn(2, 4, 11, 5)])
    assert out.shape == (2, 4, 4, 11, 5)  # (B, T, C+1, h, w)


def test_seed_class_targets_by_hand():
    # A 1-D "image" of 8 pixels with a 1-D embedding.
    #   pixel      0    1    2    3     4     5     6     7
    #   instance   1    1    1    0     0     2     2     void
    #   embedding  0    0.5  1.0  10    10    20    20.6  0
    emb = torch.tensor([0, 0.5, 1.0, 10, 10, 20, 20.6, 0]).view(1, 1, 8)
    inst = torch.tensor([[1, 1, 1, 0, 0, 2, 2, 255]])
    ids, classes = torch.tensor([1, 2]), torch.tensor([0, 2])
    taus = torch.tensor([0.25, 0.5, 0.75, 0.9])  # d2 limits 1.95, 1.10, 0.51, 0.20
    targets = seed_class_targets(emb, inst, (ids, classes), torch.tensor([0, 3, 5]), taus)
    assert targets.shape == (4, 3)
    # seed 0: masks {0,1,2}, {0,1,2}, {0,1} (IoU 2/3), {0} (IoU 1/3 -> background)
    assert targets[:, 0].tolist() == [1, 1, 1, 0]
    # seed 3: the background mask overlaps no instance
    assert targets[:, 1].tolist() == [0, 0, 0, 0]
    # seed 5: {5,6} while d2 = 0.36 passes; at tau 0.9 the mask {5} has IoU exactly 0.5 -> bg
    assert targets[:, 2].tolist() == [3, 3, 3, 0]
    # instances of no object class (-1) label their masks background
    targets = seed_class_targets(emb, inst, (ids, torch.tensor([-1, 2])), torch.tensor([0]), taus)
    assert targets[:, 0].tolist() == [0, 0, 0, 0]
    # a lower IoU threshold accepts the IoU-1/3 mask
    targets = seed_class_targets(emb, inst, (ids, classes), torch.tensor([0]), taus, iou_thr=0.3)
    assert targets[:, 0].tolist() == [1, 1, 1, 1]
    # no instances at all
    empty = seed_class_targets(emb, torch.zeros_like(inst), (ids[:0], classes[:0]),
                               torch.tensor([0, 1]), taus)
    assert empty.tolist() == [[0, 0]] * 4


def test_loss_seediness_and_seed_predictions():
    head = _head()
    logits = head([torch.randn(2, 4, 3, 4)])
    index = [torch.tensor([0, 5, 7]), None]
    targets = [torch.tensor([[0, 1, 3]] * 4), None]
    loss = head.loss_by_feat(logits, index, targets)['loss_ce']
    manual = torch.nn.functional.cross_entropy(
        logits[0].flatten(2)[:, :, index[0]].transpose(1, 2).reshape(-1, 4),
        targets[0].flatten())
    torch.testing.assert_close(loss, manual)
    loss.backward()
    assert all(p.grad is not None for p in head.parameters())
    zero = head.loss_by_feat(logits, [None, None], [None, None])['loss_ce']
    assert zero.item() == 0

    probs = torch.zeros(1, 4, 4, 2)  # (B, T, C+1, P)
    probs[0, :, 0] = 0.7  # background dominates ...
    probs[0, 2, 3, 0] = 0.6  # ... but seediness ignores it: tau 0.75, class 2 at pixel 0
    probs[0, 1, 1, 1] = 0.4  # tau 0.5, class 0 at pixel 1
    assert head.seediness(probs).tolist() == [[pytest.approx(0.6), pytest.approx(0.4)]]
    tau, label, score = head.seed_predictions(probs, torch.tensor([[1, 0]]))
    assert tau.tolist() == [[0.5, 0.75]] and label.tolist() == [[0, 2]]
    assert score[0].tolist() == [pytest.approx(0.4), pytest.approx(0.6)]


def test_errors():
    with pytest.raises(ValueError, match='taus must be'):
        _head(taus=(0.5, 1.5))
    with pytest.raises(ValueError, match='remove out_channels'):
        _head(out_channels=3)
    with pytest.raises(NotImplementedError, match='InstanceEmbeddingSegmentor'):
        _head().loss([torch.zeros(1, 4, 2, 2)], [], {})
