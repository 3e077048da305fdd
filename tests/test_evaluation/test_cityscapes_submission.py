# Copyright (c) mmaffseg contributors. All rights reserved.
"""The Cityscapes test-server submission of a semantic config (mmseg's CityscapesMetric with
format_only): labelIds PNGs that cityscapesscripts' own pixel-level evaluator reads, with the
mIoU of mmseg's IoUMetric on the same predictions.

The recipe is configs/instance_embedding/cityscapes_evaluation.md's, run through mmseg's own
tools/test.py (shipped in the mmseg wheel).
"""
import copy
import glob
import os.path as osp

import cv2
import mmseg
import numpy as np
import pytest
import torch
from helpers import tiny_synthetic_overrides
from mmengine.structures import PixelData
from mmseg.evaluation import CityscapesMetric, IoUMetric
from mmseg.structures import SegDataSample
from PIL import Image
from tool_runner import cfg_option_args, run_tool
from untrained import QUICKSTARTS, save_untrained, small_test_config

from mmaffseg.datasets.cityscapes_labels import CITYSCAPES_CLASSES, TRAIN_ID_TO_LABEL_ID

cs_eval = pytest.importorskip('cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling')

MMSEG_TEST_PY = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py')
#: The --cfg-options of the submission recipe (besides the test split's data_prefix).
SUBMISSION_OPTIONS = {'test_evaluator.type': 'CityscapesMetric',
                      'test_evaluator.format_only': 'True'}
LABEL_IDS = sorted(TRAIN_ID_TO_LABEL_ID.values())


def _val_files(root):
    """(image, labelTrainIds, labelIds) paths of the validation images."""
    segs = sorted(glob.glob(osp.join(root, 'gtFine/val/*/*_gtFine_labelTrainIds.png')))
    return [(osp.join(root, 'leftImg8bit/val', osp.basename(osp.dirname(s)),
                      osp.basename(s).replace('gtFine_labelTrainIds', 'leftImg8bit')), s,
             s.replace('labelTrainIds', 'labelIds')) for s in segs]


def _official(pred_files, gt_label_ids_files):
    """cityscapesscripts' evaluateImgLists, quiet, on a copy of its global args."""
    args = copy.deepcopy(cs_eval.args)
    args.quiet, args.JSONOutput, args.evalInstLevelScore = True, False, False
    return cs_eval.evaluateImgLists(list(pred_files), list(gt_label_ids_files), args)


def _mmseg_iou(preds, gts):
    """mmseg's IoUMetric (mIoU, per-class IoU in percent) of trainId maps."""
    metric = IoUMetric()
    metric.dataset_meta = dict(classes=[c.name for c in CITYSCAPES_CLASSES])
    metric.process({}, [
        dict(pred_sem_seg=dict(data=torch.as_tensor(p)[None]),
             gt_sem_seg=dict(data=torch.as_tensor(g)[None])) for p, g in zip(preds, gts)
    ])
    return metric.compute_metrics(metric.results)['mIoU']


def _read(path):
    """A written PNG as cityscapesscripts reads it (PIL; mmseg saves palette PNGs, whose
    palette indices are the labelIds)."""
    return np.array(Image.open(path))


def _check_submission(folder, files):
    """One ``<stem>_leftImg8bit.png`` per image, values Cityscapes labelIds; returns paths."""
    written = sorted(glob.glob(osp.join(folder, '*.png')))
    assert [osp.basename(p) for p in written] == sorted(osp.basename(i) for i, _, _ in files)
    for p in written:
        values = np.unique(_read(p))
        assert set(values.tolist()) <= set(LABEL_IDS), values
    return written


def test_format_only_writes_label_ids_the_official_evaluator_scores_like_iou_metric(
        tiny_synthetic_root, tmp_path):
    """Predictions = GT with a seeded third of the pixels changed to random classes."""
    files = _val_files(tiny_synthetic_root)
    rng = np.random.default_rng(0)
    preds, gts, samples = [], [], []
    for img, seg, _ in files:
        gt = cv2.imread(seg, cv2.IMREAD_UNCHANGED).astype(np.int64)
        pred = np.where(gt == 255, rng.integers(0, 19, gt.shape), gt)
        noisy = rng.random(gt.shape) < 0.33
        pred[noisy] = rng.integers(0, 19, int(noisy.sum()))
        preds.append(pred)
        gts.append(gt)
        s = SegDataSample(metainfo=dict(img_path=img, seg_map_path=seg))
        s.pred_sem_seg = PixelData(data=torch.as_tensor(pred)[None])
        samples.append(s.to_dict())
    folder = str(tmp_path / 'submission')
    metric = CityscapesMetric(output_dir=folder, format_only=True, keep_results=True)
    metric.process({}, samples)
    assert metric.compute_metrics(metric.results) == {}
    written = _check_submission(folder, files)
    for p, pred in zip(written, preds):  # the labelId of each pixel's trainId
        lut = np.array([TRAIN_ID_TO_LABEL_ID[t] for t in range(19)])
        assert (_read(p) == lut[pred]).all()
    official = _official(written, [ids for _, _, ids in files])
    ours = _mmseg_iou(preds, gts)
    assert 20 < ours < 90  # a non-trivial prediction
    print(f'noisy GT: official mIoU {official["averageScoreClasses"] * 100:.4f}, '
          f'IoUMetric {ours:.2f}')
    assert official['averageScoreClasses'] * 100 == pytest.approx(ours, abs=0.01)
    # without format_only (val), CityscapesMetric runs the official script itself
    metric = CityscapesMetric(output_dir=str(tmp_path / 'val'), keep_results=True)
    metric.process({}, samples)
    scores = metric.compute_metrics(metric.results)
    assert set(scores) == {'averageScoreCategories', 'averageScoreInstCategories'}
    assert scores['averageScoreCategories'] == pytest.approx(
        official['averageScoreCategories'])


@pytest.mark.slow
def test_submission_recipe_through_mmseg_test_py(tiny_synthetic_root, tmp_path):
    """mmseg's tools/test.py + the recipe's --cfg-options on an untrained quick-start model."""
    ckpt = save_untrained(small_test_config(QUICKSTARTS['deeplabv3plus']),
                          str(tmp_path / 'untrained.pth'))
    out = str(tmp_path / 'submission')
    options = dict(tiny_synthetic_overrides(tiny_synthetic_root), **SUBMISSION_OPTIONS)
    options['test_dataloader.dataset.pipeline.1.scale'] = (128, 64)  # predict at 64x128
    run_tool([MMSEG_TEST_PY, QUICKSTARTS['deeplabv3plus'], ckpt, '--work-dir',
              str(tmp_path / 'work'), '--out', out, '--cfg-options'] + cfg_option_args(options),
             timeout=600)
    files = _val_files(tiny_synthetic_root)
    written = _check_submission(out, files)
    # the official evaluator reads them and agrees with IoUMetric on the same predictions
    to_train = {label: train for train, label in TRAIN_ID_TO_LABEL_ID.items()}
    preds = [np.vectorize(to_train.get)(_read(p)) for p in written]
    gts = [cv2.imread(seg, cv2.IMREAD_UNCHANGED) for _, seg, _ in files]
    official = _official(written, [ids for _, _, ids in files])
    ours = _mmseg_iou(preds, gts)
    print(f'untrained model: official mIoU {official["averageScoreClasses"] * 100:.4f}, '
          f'IoUMetric {ours:.2f}')
    assert official['averageScoreClasses'] * 100 == pytest.approx(ours, abs=0.01)
