# Copyright (c) mmaffseg contributors. All rights reserved.
"""CityscapesInstanceMetric: cityscapesscripts' own instance evaluator reads our files.

Predictions are built from the synthetic validation images' ``*_gtFine_instanceIds.png`` and
handed to both the official evaluator (through CityscapesInstanceMetric) and our
InstanceAPMetric; the expected values are counted from the GT files directly.
"""
import copy
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from mmaffseg.datasets.cityscapes_labels import (
    CITYSCAPES_CLASSES,
    THING_TRAIN_IDS,
    decode_cityscapes_instance_ids,
)
from mmaffseg.evaluation import CityscapesInstanceMetric, InstanceAPMetric

pytest.importorskip('cityscapesscripts')

LABEL_TO_INDEX = {c.label_id: THING_TRAIN_IDS.index(c.train_id)
                  for c in CITYSCAPES_CLASSES if c.has_instances}
MIN_REGION = 100  # the official evaluator's minimum GT instance size (pixels)
OFFICIAL_IOUS = tuple(0.5 + 0.05 * k for k in range(10))  # its IoU thresholds 0.50:0.95


def _gt_images(root):
    """(img_path, seg_map_path, raw instanceIds, labelTrainIds) of the validation images."""
    out = []
    for seg in sorted(glob.glob(osp.join(root, 'gtFine/val/*/*_gtFine_labelTrainIds.png'))):
        stem = osp.basename(seg)[:-len('_gtFine_labelTrainIds.png')]
        city = osp.basename(osp.dirname(seg))
        img = osp.join(root, 'leftImg8bit/val', city, f'{stem}_leftImg8bit.png')
        raw = cv2.imread(seg.replace('labelTrainIds', 'instanceIds'), cv2.IMREAD_UNCHANGED)
        out.append((img, seg, raw.astype(np.int64), cv2.imread(seg, cv2.IMREAD_UNCHANGED)))
    return out


def _samples(images, keep):
    """Data samples predicting the GT instances ``keep(raw_id)`` selects, as exact masks."""
    rng = np.random.default_rng(0)
    samples = []
    for img, seg, raw, train_ids in images:
        ids = [i for i in np.unique(raw[raw >= 1000]).tolist() if keep(i)]
        s = SegDataSample(metainfo=dict(img_path=img, seg_map_path=seg))
        s.gt_sem_seg = PixelData(data=torch.as_tensor(train_ids.astype(np.int64))[None])
        s.gt_instance_map = PixelData(data=torch.as_tensor(
            decode_cityscapes_instance_ids(raw, train_ids))[None])
        masks = np.stack([raw == i for i in ids]) if ids else np.zeros((0, *raw.shape), bool)
        s.pred_instances = InstanceData(
            masks=torch.as_tensor(masks),
            labels=torch.as_tensor([LABEL_TO_INDEX[i // 1000] for i in ids], dtype=torch.long),
            scores=torch.as_tensor(rng.uniform(0.1, 1.0, len(ids)), dtype=torch.float32))
        samples.append(s.to_dict())
    return samples


def _run(metric, samples):
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def _recalls(images, keep, min_size):
    """Mean over classes with GT instances of at least ``min_size`` px of the kept share."""
    kept, total = {}, {}
    for _, _, raw, _ in images:
        ids, sizes = np.unique(raw[raw >= 1000], return_counts=True)
        for i, n in zip(ids.tolist(), sizes.tolist()):
            if n >= min_size:
                total[i // 1000] = total.get(i // 1000, 0) + 1
                kept[i // 1000] = kept.get(i // 1000, 0) + int(keep(i))
    return 100 * np.mean([kept[c] / total[c] for c in total])


@pytest.mark.parametrize('case', ['perfect', 'one_class_dropped', 'every_other_dropped'])
def test_official_evaluator_agrees_where_definitions_coincide(tiny_synthetic_root, tmp_path,
                                                              case):
    """Exact masks, no false positives: both metrics give each class's recall.

    Official: over the classes with a GT instance of >= 100 px, counting those only; ours:
    over the classes with any GT instance. AP (0.50:0.95) equals AP50 for exact masks.
    """
    images = _gt_images(tiny_synthetic_root)
    sizes = np.concatenate([np.unique(r[r >= 1000], return_counts=True)[1]
                            for _, _, r, _ in images])
    assert (sizes < MIN_REGION).any() and (sizes >= MIN_REGION).any()  # both kinds present
    car = 26
    keep = dict(perfect=lambda i: True,
                one_class_dropped=lambda i: i // 1000 != car,
                every_other_dropped=lambda i: i % 2 == 0)[case]
    samples = _samples(images, keep)
    official = _run(CityscapesInstanceMetric(THING_TRAIN_IDS, output_dir=str(tmp_path)),
                    samples)
    ours = _run(InstanceAPMetric(THING_TRAIN_IDS, iou_thrs=OFFICIAL_IOUS), samples)
    expected_official = _recalls(images, keep, MIN_REGION)
    expected_ours = _recalls(images, keep, 1)
    print(f'{case}: official {official}, ours AP50 {ours["AP50"]} AP {ours["AP"]}; expected '
          f'{expected_official:.2f} / {expected_ours:.2f}')
    assert official['AP50'] == pytest.approx(expected_official, abs=0.01)
    assert official['AP'] == pytest.approx(expected_official, abs=0.01)
    assert ours['AP50'] == pytest.approx(expected_ours, abs=0.01)
    assert ours['AP'] == pytest.approx(expected_ours, abs=0.01)
    if case == 'perfect':
        assert official == dict(AP=100.0, AP50=100.0) and ours['AP50'] == 100.0
    else:
        assert official['AP50'] < 100 and ours['AP50'] < 100
    # the files are the evaluator's format: one text file per image, labelIds, binary masks
    txts = sorted(glob.glob(str(tmp_path / '*_leftImg8bit.txt')))
    assert len(txts) == len(images)
    for line in open(txts[0]).read().splitlines():
        rel, label_id, score = line.split(' ')
        assert int(label_id) in LABEL_TO_INDEX and 0 < float(score) <= 1
        mask = cv2.imread(str(tmp_path / rel), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    # the evaluator's GT cache goes to the output folder, not into the installed package
    assert (tmp_path / 'gtInstances.json').exists()


def test_wrong_class_is_a_miss_and_a_false_positive(tiny_synthetic_root, tmp_path):
    """Every car predicted as truck: car AP 0 in both; the official AP drops below recall."""
    images = _gt_images(tiny_synthetic_root)
    samples = _samples(images, lambda i: True)
    car, truck = LABEL_TO_INDEX[26], LABEL_TO_INDEX[27]
    for s in samples:
        labels = s['pred_instances']['labels']
        labels[labels == car] = truck
    official = _run(CityscapesInstanceMetric(THING_TRAIN_IDS, output_dir=str(tmp_path)),
                    samples)
    perfect = _recalls(images, lambda i: True, MIN_REGION)
    assert official['AP50'] < perfect - 1


def test_temporary_folder_format_only_and_errors(tiny_synthetic_root, tmp_path):
    images = _gt_images(tiny_synthetic_root)[:1]
    samples = _samples(images, lambda i: True)
    metric = CityscapesInstanceMetric(THING_TRAIN_IDS)  # no output_dir: a temporary folder
    folder = metric.output_dir
    assert _run(metric, samples) == dict(AP=100.0, AP50=100.0)
    assert osp.isdir(folder) and not glob.glob(osp.join(folder, '*'))  # emptied
    del metric
    assert not osp.exists(folder)

    out = tmp_path / 'submission'
    assert _run(CityscapesInstanceMetric(THING_TRAIN_IDS, output_dir=str(out),
                                         format_only=True), samples) == {}
    assert len(glob.glob(str(out / '*_leftImg8bit.txt'))) == 1
    assert not (out / 'gtInstances.json').exists()

    with pytest.raises(ValueError, match='thing trainIds'):
        CityscapesInstanceMetric((0, 11))
    with pytest.raises(ValueError, match='needs output_dir'):
        CityscapesInstanceMetric(format_only=True)
    bad = _samples(images, lambda i: True)
    bad[0]['pred_instances']['labels'][:] = 8
    with pytest.raises(ValueError, match='not indices'):
        CityscapesInstanceMetric(THING_TRAIN_IDS, output_dir=str(tmp_path)).process({}, bad)
    small = _samples(images, lambda i: True)
    small[0]['ori_shape'] = (32, 64)
    with pytest.raises(ValueError, match='original size'):
        CityscapesInstanceMetric(THING_TRAIN_IDS, output_dir=str(tmp_path)).process({}, small)
    # a prediction the evaluator refuses: its message comes back, the process survives
    metric = CityscapesInstanceMetric(THING_TRAIN_IDS, output_dir=str(tmp_path / 'x'))
    metric.process({}, samples)
    txt = metric.results[0][0]
    with open(txt, 'a') as f:
        f.write('/abs/mask.png 26 0.5\n')
    with pytest.raises(RuntimeError, match='relative path'):
        metric.compute_metrics(metric.results)


def _small_and_big_of_one_class(images):
    """(image index, labelId, its small instance ids, all instance ids) of a first such image."""
    for n, (_, _, raw, _) in enumerate(images):
        ids, sizes = np.unique(raw[raw >= 1000], return_counts=True)
        for c in np.unique(ids // 1000).tolist():
            of_c = ids // 1000 == c
            if (sizes[of_c] < MIN_REGION).any() and (sizes[of_c] >= MIN_REGION).any():
                return n, c, ids[of_c & (sizes < MIN_REGION)], ids
    pytest.fail('no image with a small and a big instance of one class')


def test_class_whose_predictions_are_all_ignored_scores_zero(tiny_synthetic_root, tmp_path):
    """Only a small (< 100 px, ignored) instance of a class predicted, its big one missed.

    The official ``evaluateMatches`` crashes there (IndexError on an empty score list); by its
    definition the class's AP is 0 (the big instance missed, no prediction counted), which the
    metric returns; the other classes keep their perfect 100.
    """
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as cs_eval

    from mmaffseg.evaluation.cityscapes_instance_metric import evaluate_cityscapes_instances
    images = _gt_images(tiny_synthetic_root)
    n, c, small, ids = _small_and_big_of_one_class(images)
    images = images[n:n + 1]
    others = [i for i in ids.tolist() if i // 1000 != c]
    metric = CityscapesInstanceMetric(THING_TRAIN_IDS, output_dir=str(tmp_path))
    metric.process({}, _samples(images, lambda i: i == small[0] or i in others))
    expected = _recalls(images, lambda i: i in others, MIN_REGION)
    assert expected < 100
    assert metric.compute_metrics(metric.results)['AP50'] == pytest.approx(expected, abs=0.01)
    # the official function itself on the same files
    (txt, gt), = metric.results
    args = copy.deepcopy(cs_eval.args)
    args.predictionPath, args.quiet = str(tmp_path), True
    args.gtInstancesFile = str(tmp_path / 'gt.json')
    cs_eval.setInstanceLabels(args)
    matches = cs_eval.matchGtWithPreds([txt], [gt], cs_eval.getGtInstances([gt], args), args)
    with pytest.raises(IndexError):
        cs_eval.evaluateMatches(matches, args)
    assert evaluate_cityscapes_instances([txt], [gt], str(tmp_path))['averages']['classes'][
        [lab.name for lab in CITYSCAPES_CLASSES if lab.label_id == c][0]]['ap50%'] == 0


@pytest.mark.slow
def test_quickstart_config_reports_both_metrics_through_mmseg_test_py(tiny_synthetic_root,
                                                                     tmp_path):
    """The quick-start config's evaluators, through mmseg's own tools/test.py: ours and the
    official ones side by side (an untrained model: both 0)."""
    import mmseg
    from helpers import tiny_synthetic_overrides
    from tool_runner import cfg_option_args, run_tool
    from untrained import QUICKSTARTS, save_untrained, small_test_config
    config = QUICKSTARTS['instance-embedding']
    ckpt = save_untrained(small_test_config(config), str(tmp_path / 'untrained.pth'))
    options = tiny_synthetic_overrides(tiny_synthetic_root)
    options['test_dataloader.dataset.pipeline.1.scale'] = (128, 64)  # predict at 64x128
    out = run_tool([osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'test.py'), config,
                    ckpt, '--work-dir', str(tmp_path / 'work'), '--cfg-options'] +
                   cfg_option_args(options), timeout=600)
    line = [s for s in out.splitlines() if 'Iter(test)' in s][-1]
    for key in ('AP50', 'AR@100', 'cityscapes/AP', 'cityscapes/AP50'):
        assert f' {key}: ' in line, line
    assert 'Cityscapes instance-level evaluation (cityscapesscripts)' in out
