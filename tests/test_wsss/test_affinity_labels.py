# Copyright (c) mmaffseg contributors. All rights reserved.
"""Affinity labels: golden pair labels, non-square brute force, majority downsampling, CAM rules."""
import importlib.util

import numpy as np
import pytest
import torch
from golden import assert_close, case_paths, load_case

from mmaffseg.ops.affinity_pairs import affinity_pair_labels, downsample_label
from mmaffseg.ops.neighbour_offsets import pair_indices
from mmaffseg.postprocessing.dense_crf import DenseCRF
from mmaffseg.wsss.affinity_labels import affinity_label_from_cams

LABEL_CASES = case_paths('psa', 'afflabel_*')


def test_label_fixtures_exist():
    assert LABEL_CASES


@pytest.mark.parametrize('path', LABEL_CASES, ids=lambda p: p.split('/')[-1])
def test_golden_pair_labels(path):
    case = load_case(path)
    outputs = affinity_pair_labels(torch.from_numpy(case.inputs['label']),
                                   radius=case.meta['ctor']['radius'])
    for name, value in zip(('bg_pos', 'fg_pos', 'neg'), outputs):
        assert value.dtype == torch.float32
        assert_close(case, name, value)


def test_pair_labels_brute_force_non_square_batch():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 4, (2, 9, 14), generator=g)
    label[label == 3] = 255
    bg, fg, neg = affinity_pair_labels(label, radius=4)
    ind_from, ind_to = pair_indices(4, (9, 14))
    num_from = ind_from.numel()
    for b in range(2):
        flat = label[b].flatten().tolist()
        for j, t in enumerate(ind_to.tolist()):
            k, p = divmod(j, num_from)
            a, c = flat[ind_from[p]], flat[t]
            assert bg[b, k, p] == (a == c == 0)
            assert fg[b, k, p] == (a == c and a not in (0, 255))
            assert neg[b, k, p] == (a != c and 255 not in (a, c))


def test_downsample_label_majority_and_padding():
    label = torch.tensor([[1, 1, 2, 2, 7],
                          [1, 3, 2, 255, 7],
                          [255, 255, 0, 0, 0]])
    out = downsample_label(label, 2)
    # blocks: {1,1,1,3} -> 1; {2,2,2,255} -> 2; {7,7,pad,pad} -> tie -> 7;
    # {255,255,pad,pad} -> 255; {0,0,pad,pad} -> 0; {0,pad,pad,pad} -> 255
    torch.testing.assert_close(out, torch.tensor([[1, 2, 7], [255, 0, 255]]))
    assert downsample_label(label, 1) is label
    batch = torch.stack([label, label.flip(-1)])
    torch.testing.assert_close(downsample_label(batch, 2)[0], out)
    assert downsample_label(batch, 4).shape == (2, 1, 2)


class IdentityCRF:
    """Stands in for DenseCRF: returns the stacks unchanged (to test the labelling rules)."""

    def batch(self, probs, imgs):
        return list(probs)


def test_affinity_label_rules():
    cams = np.array([[[0.9, 0.6, 0.05], [0.0, 0.0, 0.5]],
                     [[0.0, 0.0, 0.0], [0.95, 0.0, 0.3]]], dtype=np.float32)  # (2, 2, 3)
    img = np.zeros((2, 3, 3), np.uint8)
    label = affinity_label_from_cams(img, cams, np.array([4, 9]), crf=IdentityCRF())
    # low alpha (4): bg = (1 - max)^4; high alpha (32): bg = (1 - max)^32
    # (0,0) 0.9 -> class 5; (0,1) 0.6: low bg 0.0256 < 0.6 -> 5, high bg ~0 -> stays 5;
    # (0,2) max 0.05: low bg 0.81 -> unknown, high bg 0.19 > 0.05 -> background;
    # (1,0) 0.95 -> class 10; (1,1) no score: bg wins both -> background 0;
    # (1,2) max 0.5: low bg 0.0625 -> class 5; high bg 2e-10 -> stays 5
    np.testing.assert_array_equal(label, [[5, 5, 0], [10, 0, 5]])
    assert label.dtype == np.uint8
    cams[0, 0, 2] = 0.2  # low bg 0.41 > 0.2 -> unknown; high bg 0.0008 < 0.2 -> unknown
    label = affinity_label_from_cams(img, cams, [4, 9], crf=IdentityCRF())
    assert label[0, 2] == 255
    with pytest.raises(ValueError, match='K = len\\(class_ids\\) = 3'):
        affinity_label_from_cams(img, cams, [1, 2, 3], crf=IdentityCRF())


@pytest.mark.skipif(importlib.util.find_spec('pydensecrf') is None, reason='needs pydensecrf')
def test_affinity_label_with_dense_crf():
    g = np.random.default_rng(0)
    img = g.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    img[6:18, 8:24] = (200, 30, 30)
    cams = np.zeros((1, 24, 32), np.float32)
    cams[0, 8:16, 10:22] = 1.0
    label = affinity_label_from_cams(img, cams, [2], crf=DenseCRF(iterations=5))
    assert label.shape == (24, 32) and set(np.unique(label)) <= {0, 3, 255}
    assert label[12, 16] == 3 and label[0, 0] == 0
