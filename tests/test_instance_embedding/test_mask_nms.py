# Copyright (c) mmaffseg contributors. All rights reserved.
import pytest
import torch

from mmaffseg.instance_embedding import mask_nms
from mmaffseg.ops import pairwise_mask_iou


def _masks(*rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_iou_matrix_by_hand():
    m = _masks([1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0])
    iou = pairwise_mask_iou(m)
    expected = torch.tensor([[1, 1 / 3, 0], [1 / 3, 1, 0], [0, 0, 0]])
    torch.testing.assert_close(iou, expected)
    # against another set, with leading dimensions: (2, 3, P) x (2, P) -> (2, 3, 2)
    other = _masks([1, 1, 1, 1], [0, 0, 0, 1])
    cross = pairwise_mask_iou(torch.stack([m, ~m]), other)
    torch.testing.assert_close(cross[0], torch.tensor([[0.5, 0], [0.5, 0], [0, 0]]))
    torch.testing.assert_close(cross[1], torch.tensor([[0.5, 0.5], [0.5, 0.5], [1, 0.25]]))


def test_nms_keeps_best_of_duplicates_and_disjoint_masks():
    m = _masks([1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 1, 1, 1, 0])
    scores = torch.tensor([0.5, 0.9, 0.3, 0.2])
    # 1 (0.9) kept; 0 overlaps it with IoU 2/3 -> dropped; 2 kept; 3 overlaps 2 with IoU 2/3
    assert mask_nms(m, scores, 0.5).tolist() == [False, True, True, False]
    # a looser threshold keeps everything
    assert mask_nms(m, scores, 0.7).all()
    # suppression only by KEPT masks: 0 dropped by 1, so 0 cannot drop anything
    chain = _masks([1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0])
    assert mask_nms(chain, torch.tensor([0.8, 0.9, 0.1]), 0.6).tolist() == [False, True, True]


def test_nms_empty_and_errors():
    assert mask_nms(torch.zeros(0, 5, dtype=torch.bool), torch.zeros(0), 0.5).numel() == 0
    with pytest.raises(ValueError, match='iou_thr'):
        mask_nms(_masks([1, 0]), torch.ones(1), 0.0)
    with pytest.raises(ValueError, match=r'masks \(n, P\)'):
        mask_nms(_masks([1, 0]), torch.ones(2), 0.5)
