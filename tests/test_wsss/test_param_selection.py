# Copyright (c) mmaffseg contributors. All rights reserved.
"""Choosing PSA's alphas / beta on a selection set: the choice maximises the selection set's
mIoU (checked against the IoU written out by hand), and the images outside the selection set
(the scored validation images) are never read."""
import argparse
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from helpers import tiny_synthetic_overrides
from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from test_wsss.test_pseudo_label_loop import make_psa_checkpoints
from tool_runner import load_tool

import mmaffseg  # noqa: F401
from mmaffseg.cli import load_config
from mmaffseg.ops.neighbour_offsets import from_window, neighbour_offsets
from mmaffseg.postprocessing.dense_crf import DenseCRF
from mmaffseg.wsss.cam import stack_to_label
from mmaffseg.wsss.param_selection import (
    affinity_candidates,
    affinity_sweep_areas,
    select_best,
    walk_sweep_areas,
)
from mmaffseg.wsss.random_walk import random_walk_cams

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', 'psa')
PL_CFG = osp.join(CFG_DIR, 'psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py')
AFF_CFG = osp.join(CFG_DIR, 'psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-128x256.py')
NUM_CLASSES = 4  # background + 3


def _naive_miou(preds, gts, num_classes=NUM_CLASSES, ignore_index=255) -> float:
    """IoU = TP / (TP + FP + FN) per class over all images, mean over classes with a union."""
    tp, fp, fn = (np.zeros(num_classes) for _ in range(3))
    for pred, gt in zip(preds, gts):
        valid = gt != ignore_index
        for c in range(num_classes):
            p, g = (pred == c) & valid, (gt == c) & valid
            tp[c] += (p & g).sum()
            fp[c] += (p & ~g).sum()
            fn[c] += (~p & g).sum()
    union = tp + fp + fn
    return float(np.mean(tp[union > 0] / union[union > 0]) * 100)


def _walk_inputs(seed: int, size=(16, 24), radius=2, stride=4):
    g = torch.Generator().manual_seed(seed)
    class_ids = torch.tensor([0, 2])  # labels 1 and 3
    cams = torch.rand(len(class_ids), *size, generator=g) * 0.6  # alpha matters
    hf, wf = from_window(radius, (size[0] // stride, size[1] // stride))
    aff = torch.rand(1, len(neighbour_offsets(radius)), hf * wf, generator=g)
    return cams, class_ids, aff


def _walk_label(cams, class_ids, aff, alpha, beta, radius=2, stride=4, logt=3):
    scores = random_walk_cams(cams[None], aff, alpha=alpha, beta=beta, logt=logt,
                              radius=radius, stride=stride)[0]
    return stack_to_label(scores.argmax(0), class_ids).numpy()


def test_walk_selection_picks_the_best_selection_miou():
    candidates = [(a, b) for a in (1.0, 2.0, 4.0) for b in (1.0, 8.0)]
    images = [_walk_inputs(seed) for seed in (0, 1)]
    labels = {c: [_walk_label(*img, *c) for img in images] for c in candidates}
    # masks made to agree with the labels of a candidate that is not the first and whose
    # labels differ from every other candidate's
    target = next(c for c in candidates[::-1] if all(
        any((a != b).any() for a, b in zip(labels[c], labels[o])) for o in candidates if o != c))
    assert target != candidates[0]
    gts = [_walk_label(*img, *target) for img in images]
    gts[0][:2] = 255  # ignored pixels take no part
    totals = {}
    for (cams, class_ids, aff), gt in zip(images, gts):
        areas = walk_sweep_areas(cams, class_ids, aff, None, gt, candidates, NUM_CLASSES,
                                 radius=2, stride=4, logt=3)
        assert set(areas) == {'rw'}  # no CRF asked for
        for cand, a in areas['rw'].items():
            totals[cand] = totals.get(cand, 0) + a
    best, scores = select_best(totals)
    naive = {c: _naive_miou([_walk_label(*img, *c) for img in images], gts)
             for c in candidates}
    for c in candidates:
        assert scores[c] == pytest.approx(naive[c], abs=1e-6)
    assert best == max(candidates, key=lambda c: naive[c]) == target
    assert scores[target] == pytest.approx(100.0)
    assert all(scores[c] < 99 for c in candidates if c != target)  # a unique best
    assert len({round(s, 6) for s in scores.values()}) > 2  # the candidates do differ


def test_select_best_ties_go_to_the_first_candidate():
    areas = np.array([[5., 5.], [10., 10.], [5., 5.], [10., 10.]])  # IoU 50 % for both classes
    best, scores = select_best({(2, 8): areas, (1, 4): areas.copy(), (4, 4): areas / 2})
    assert best == (2, 8) and scores[(1, 4)] == scores[(2, 8)] == pytest.approx(50.0)
    with pytest.raises(ValueError, match='no candidates'):
        select_best({})


def test_affinity_selection_counts_unknown_pixels_as_wrong():
    """An all-unknown affinity label scores 0, not a perfect score on the pixels it labels."""
    crf = DenseCRF(workers=0)
    g = torch.Generator().manual_seed(0)
    img = (torch.rand(16, 24, 3, generator=g) * 255).byte().numpy()
    class_ids = torch.tensor([1])  # label 2
    cams = torch.zeros(1, 16, 24)
    cams[0, 4:12, 6:18] = 0.9
    gt = np.zeros((16, 24), np.int64)
    gt[4:12, 6:18] = 2
    candidates = affinity_candidates([1, 4], 8)
    assert candidates == [(1.0, 8.0), (4.0, 32.0)]
    areas = affinity_sweep_areas(cams, class_ids, img, gt, candidates, crf, NUM_CLASSES)
    for cand, a in areas.items():
        from mmaffseg.wsss.affinity_labels import affinity_label_from_cams
        label = affinity_label_from_cams(img, cams, class_ids, *cand, crf=crf)
        pred = np.where(label == 255, -1, label)  # unknown: no class
        best, scores = select_best({cand: a})
        assert scores[cand] == pytest.approx(_naive_miou([pred], [gt]), abs=1e-6)
    with pytest.raises(ValueError, match='high_ratio'):
        affinity_candidates([1], 1)


# ------------------------------------------------------------ the tool on the tiny dataset
@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Randomly initialised CAM classifier and AffinityNet of the demo configs."""
    return make_psa_checkpoints(tmp_path_factory.mktemp('psa_sel_ckpt'))


def _load_tool():
    return load_tool('select_psa_params.py')


def _select(root, checkpoints, out, sweep, *extra, status=0):
    opts = dict(tiny_synthetic_overrides(root))
    opts.update({'test_dataloader.dataset.indices': [0, 1, 2],  # the selection set
                 'test_cfg.crf.workers': 0, 'test_cfg.cam_scales': [1.0, 0.5],
                 'test_cfg.num_threads': 1, 'test_cfg.rw_logt': 3})
    argv = [PL_CFG, '--sweep', sweep, '--cam-checkpoint', checkpoints[0], '--aff-checkpoint',
            checkpoints[1], '--out', str(out), '--work-dir', str(out / 'log'),
            '--low-alphas', '1', '4', '--rw-alphas', '2', '16', '--rw-betas', '1', '8',
            *extra, '--cfg-options'] + [f'{k}={json.dumps(v)}' for k, v in opts.items()]
    assert _load_tool().main(argv) == status
    with open(out / f'selection_{sweep}.json') as f:
        return json.load(f)


def _poison(root, split, indices=None):
    """Overwrite the masks (``labelTrainIds``) of ``split`` with one class everywhere."""
    folder = osp.join(root, 'gtFine', split)
    files = sorted(osp.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                   if f.endswith('_gtFine_labelTrainIds.png'))  # dataset order
    for i, path in enumerate(files):
        if indices is None or i in indices:
            mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            cv2.imwrite(path, np.full_like(mask, 13))  # "car" over the whole image
    return files


def test_selection_never_reads_the_evaluation_masks(tiny_synthetic_root, checkpoints, tmp_path):
    """Masks of the validation images and of the training images outside the selection set
    are replaced: the result does not move. Replacing a selection mask does move it. (The
    walk sweep: it reads both networks; the affinity sweep reads its images the same way.)"""
    sweep = 'walk'
    reference = _select(tiny_synthetic_root, checkpoints, tmp_path / 'ref', sweep)
    assert len(reference['selection_images']) == 3
    assert all('/train/' in p for p in reference['selection_images'])
    assert len(reference['candidates']) == 4 and reference['select_on'] == 'rw_crf'
    key = f'mIoU {reference["select_on"]}'
    best = max(reference['candidates'], key=lambda r: r[key])
    assert reference['selected_miou'] == best[key]
    assert reference['selected'] == {k: v for k, v in best.items() if not k.startswith('mIoU')}

    root = str(tmp_path / 'data')
    shutil.copytree(tiny_synthetic_root, root)
    assert len(_poison(root, 'val')) == 3
    _poison(root, 'train', indices={3, 4, 5})
    assert _select(root, checkpoints, tmp_path / 'poisoned', sweep)['candidates'] == \
        reference['candidates']

    _poison(root, 'train', indices={0})
    assert _select(root, checkpoints, tmp_path / 'poisoned_sel', sweep)['candidates'] != \
        reference['candidates']


def test_demo_selects_on_training_images_and_scores_the_validation_images(tiny_synthetic_root):
    """tools/wsss_demo.py: the selection set and the scored set share no image."""
    from mmseg.registry import DATASETS
    demo = load_tool('wsss_demo.py')
    init_default_scope('mmseg')
    paths = []
    for options in demo.split_options(4):
        opts = dict(tiny_synthetic_overrides(tiny_synthetic_root))
        parser = argparse.ArgumentParser()  # parsed as the tools parse --cfg-options
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        opts.update(parser.parse_args(['--cfg-options'] + options).cfg_options)
        dataset = DATASETS.build(load_config(PL_CFG, opts).test_dataloader.dataset)
        paths.append({dataset.get_data_info(i)['seg_map_path'] for i in range(len(dataset))})
    selection, evaluation = paths
    assert len(selection) == 4 and len(evaluation) == 3  # 4 of 6 training, all 3 val images
    assert all('/gtFine/train/' in p for p in selection)
    assert all('/gtFine/val/' in p for p in evaluation)
    with pytest.raises(ValueError, match='num-images'):
        demo.split_options(0)


def test_cams_of_another_cam_checkpoint_are_not_reused(tiny_synthetic_root, checkpoints,
                                                       tmp_path, capsys):
    """A sweep into a folder whose CAM cache came from another --cam-checkpoint scored the
    old model's CAMs (exit 0). It stops before any work naming the folder and the stage;
    --overwrite recomputes the CAMs: the result of a clean run."""
    from test_pseudo_label_provenance import other_weights
    out = tmp_path / 'out'
    first = _select(tiny_synthetic_root, checkpoints, out, 'affinity')
    other = (other_weights(checkpoints[0], tmp_path / 'cam2.pth'), checkpoints[1])
    capsys.readouterr()
    assert _select(tiny_synthetic_root, other, out, 'affinity', status=2) == first
    err = capsys.readouterr().err
    assert f'the folder {out} holds results of other inputs' in err
    assert "stage 'cams' was made from other inputs (cam_checkpoint: sha256:" in err
    again = _select(tiny_synthetic_root, other, out, 'affinity', '--overwrite')
    clean = _select(tiny_synthetic_root, other, tmp_path / 'clean', 'affinity')
    assert again == clean and again['candidates'] != first['candidates']


def test_the_config_sets_the_selection_and_a_given_option_wins(tiny_synthetic_root, checkpoints,
                                                               tmp_path, monkeypatch, capsys):
    """``--cfg-options test_cfg.select_on=rw`` (and the other selection settings) reach the
    loop when the option is left out; an option given replaces the config's value, saying so
    in one line. (The loop stops at ``run``: the settings are what is tested.)"""
    from mmaffseg.wsss.param_selection import PSAParamSelectionLoop
    seen = []
    monkeypatch.setattr(PSAParamSelectionLoop, 'run', lambda self: seen.append(self) or {})
    overrides = tiny_synthetic_overrides(tiny_synthetic_root)
    opts = [f'{k}={json.dumps(v)}' for k, v in overrides.items()]
    base = [PL_CFG, '--cam-checkpoint', checkpoints[0], '--aff-checkpoint', checkpoints[1],
            '--out', str(tmp_path / 'out'), '--work-dir', str(tmp_path / 'log')]
    result = str(tmp_path / 'r.json')
    tool = _load_tool()
    assert tool.main(base + ['--cfg-options', *opts, 'test_cfg.sweep=walk',
                             'test_cfg.select_on=rw', 'test_cfg.rw_alphas=[3]',
                             'test_cfg.rw_betas=[6.5,9]', f'test_cfg.result_file={result}']) == 0
    loop = seen.pop()
    assert loop.select_on == 'rw' and list(loop.stages) == ['rw']
    assert loop.candidates == [(3.0, 6.5), (3.0, 9.0)] and loop.result_file == result
    assert tool.main(base + ['--sweep', 'affinity', '--cfg-options', *opts,
                             'test_cfg.sweep=walk', 'test_cfg.low_alphas=[3]',
                             'test_cfg.high_ratio=4']) == 0
    loop = seen.pop()
    assert loop.sweep == 'affinity' and loop.candidates == [(3.0, 12.0)]
    err = capsys.readouterr().err
    assert "--sweep affinity replaces the config's test_cfg.sweep=walk" in err
    assert tool.main(base + ['--select-on', 'rw', '--sweep', 'walk', '--cfg-options', *opts]) == 0
    assert seen.pop().select_on == 'rw'
    assert tool.main(base + ['--cfg-options', *opts]) == 2
    assert 'give --sweep (affinity or walk) or test_cfg.sweep' in capsys.readouterr().err
