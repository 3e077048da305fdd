# Copyright (c) mmaffseg contributors. All rights reserved.
"""PSA's stages on tensors (no files): against a naive dense-walk pipeline, and walking only the
present classes against walking every class."""
import builtins
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from benchmarks.dense_random_walk import dense_random_walk

from mmaffseg.ops.neighbour_offsets import from_window, neighbour_offsets
from mmaffseg.postprocessing import DenseCRF
from mmaffseg.wsss.pseudo_label_stages import pseudo_label_stages, stage_labels

RADIUS, STRIDE = 2, 8
WALK = dict(rw_alpha=4, rw_beta=2, rw_logt=4)


def _inputs(seed: int, size=(45, 61), num_classes: int = 20, present=(3, 11, 14)):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    cams = torch.zeros(num_classes, h, w)
    for k in present:  # one blob per class, noisy, normalised to max 1
        y, x = torch.randint(0, h, (1,), generator=g), torch.randint(0, w, (1,), generator=g)
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
        blob = torch.exp(-((yy - y)**2 + (xx - x)**2) / 150.) + 0.1 * torch.rand(h, w, generator=g)
        cams[k] = blob / blob.max()
    grid = (-(-h // STRIDE), -(-w // STRIDE))
    rows, cols = from_window(RADIUS, grid)
    aff = torch.rand(1, len(neighbour_offsets(RADIUS)), rows * cols, generator=g)
    img = torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy()
    class_ids = torch.tensor(sorted(present))
    return cams, class_ids, aff, img


def _naive_walk_labels(cams_all: torch.Tensor, aff: torch.Tensor) -> torch.Tensor:
    """PSA's walk written out with the dense transition matrix, over all classes (absent ones
    with zero CAMs): labels 0 background, k + 1 class k."""
    h, w = cams_all.shape[-2:]
    bg = (1 - cams_all.max(0, keepdim=True).values) ** WALK['rw_alpha']
    stack = torch.cat([bg, cams_all])[None].double()
    stack = F.pad(stack, (0, -w % STRIDE, 0, -h % STRIDE))
    pooled = F.avg_pool2d(stack, STRIDE, STRIDE)
    walked = dense_random_walk(pooled, aff.double(), RADIUS, WALK['rw_beta'], WALK['rw_logt'])
    up = F.interpolate(walked, stack.shape[-2:], mode='bilinear', align_corners=False)
    return up[0, :, :h, :w]


def _assert_same_argmax(labels: torch.Tensor, ref_scores: torch.Tensor) -> None:
    """Equal labels, except where the reference's two best scores tie within float32."""
    ref = ref_scores.argmax(0)
    top2 = ref_scores.topk(2, dim=0).values
    ties = (top2[0] - top2[1]) <= 1e-5 * top2[0].abs().clamp_min(1e-12)
    assert bool(((labels == ref) | ties).all()), int((labels != ref).sum())
    assert float(ties.float().mean()) < 0.01


def test_stages_on_tensors_without_files(monkeypatch):
    """image -> {stage: label} for every stage, with open()/os.replace disabled: no file I/O;
    cam, rw and rw_crf against the naive pipeline, affinity labels present and in range."""
    cams_all, class_ids, aff, img = _inputs(0)

    def no_io(*args, **kwargs):
        raise AssertionError('the stages function touched a file')

    monkeypatch.setattr(builtins, 'open', no_io)
    monkeypatch.setattr(os, 'replace', no_io)
    crf = DenseCRF(iterations=3)
    labels = pseudo_label_stages(cams_all[class_ids], class_ids,
                                 ('cam', 'affinity_labels', 'rw', 'rw_crf'), aff, img, crf,
                                 radius=RADIUS, stride=STRIDE, **WALK)
    monkeypatch.undo()
    assert set(labels) == {'cam', 'affinity_labels', 'rw', 'rw_crf'}
    # cam: argmax of [0.2, CAM_1..CAM_20] over all classes (Table 1 "CAM")
    cam_ref = torch.cat([torch.full_like(cams_all[:1], 0.2), cams_all])
    _assert_same_argmax(labels['cam'], cam_ref)
    ref = _naive_walk_labels(cams_all, aff)
    _assert_same_argmax(labels['rw'], ref)
    present = torch.cat([torch.zeros(1, dtype=torch.long), class_ids + 1])
    probs = ref[present] / ref[present].sum(0, keepdim=True).clamp_min(1e-5)
    refined = crf(probs.float().numpy(), img)
    np.testing.assert_array_equal(labels['rw_crf'].numpy(), present[refined.argmax(0)].numpy())
    allowed = set(present.tolist()) | {255}
    assert set(np.unique(np.asarray(labels['affinity_labels'])).tolist()) <= allowed


@pytest.mark.parametrize('seed', [1, 2])
def test_walking_present_classes_equals_walking_all(seed):
    """The walk moves background + the image's classes only; walking all 20 classes (zero CAMs
    for the absent ones) gives the same rw label."""
    cams_all, class_ids, aff, _ = _inputs(seed)
    present, _ = stage_labels(cams_all[class_ids], class_ids, ('rw', ), aff, radius=RADIUS,
                              stride=STRIDE, **WALK)
    every, _ = stage_labels(cams_all, torch.arange(len(cams_all)), ('rw', ), aff,
                            radius=RADIUS, stride=STRIDE, **WALK)
    torch.testing.assert_close(present['rw'], every['rw'], rtol=0, atol=0)


def test_walk_stages_need_affinities():
    cams_all, class_ids, _, _ = _inputs(0)
    with pytest.raises(ValueError, match='pass the affinities'):
        stage_labels(cams_all[class_ids], class_ids, ('rw', ))
    with pytest.raises(ValueError, match='need the dense CRF'):
        pseudo_label_stages(cams_all[class_ids], class_ids, ('affinity_labels', ))
