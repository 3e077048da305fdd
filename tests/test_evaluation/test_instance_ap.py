# Copyright (c) mmaffseg contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from mmaffseg.evaluation import InstanceAPMetric, average_precision, match_detections

THINGS = (11, 13, 17)  # three instance classes; everything else is stuff


def _sample(inst, sem, masks, labels, scores):
    s = SegDataSample()
    s.gt_instance_map = PixelData(data=torch.as_tensor(inst)[None])
    s.gt_sem_seg = PixelData(data=torch.as_tensor(sem)[None])
    masks = torch.as_tensor(np.asarray(masks, dtype=bool)).reshape(-1, *inst.shape)
    s.pred_instances = InstanceData(masks=masks, labels=torch.as_tensor(labels).long(),
                                    scores=torch.as_tensor(scores).float())
    return s.to_dict()


def _evaluate(samples, **kwargs):
    metric = InstanceAPMetric(THINGS, **kwargs)
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def _scene():
    """10x10 image: instances 1 and 2 of class 0 (trainId 11), 3 of class 2, void corner."""
    inst = np.zeros((10, 10), np.int64)
    sem = np.zeros((10, 10), np.int64)
    inst[0:4, 0:4], sem[0:4, 0:4] = 1, 11
    inst[6:10, 0:5], sem[6:10, 0:5] = 2, 11
    inst[2:8, 6:9], sem[2:8, 6:9] = 3, 17
    inst[9, 9] = 255
    return inst, sem


def test_perfect_predictions():
    inst, sem = _scene()
    masks = [inst == i for i in (1, 2, 3)]
    masks[2] = masks[2] | (inst == 255)  # void pixels are removed before the IoU
    out = _evaluate([_sample(inst, sem, masks, [0, 0, 2], [0.9, 0.8, 0.7])])
    assert out == {'AP50': 100.0, 'AP60': 100.0, 'AP70': 100.0, 'AP': 100.0, 'AR@10': 100.0,
                   'AR@50': 100.0, 'AR@100': 100.0}


def test_empty_predictions_and_empty_ground_truth():
    inst, sem = _scene()
    out = _evaluate([_sample(inst, sem, np.zeros((0, 10, 10)), [], [])])
    assert out['AP50'] == 0 and out['AP'] == 0 and out['AR@100'] == 0
    # no GT anywhere: undefined, reported as NaN rather than a made-up number
    out = _evaluate([_sample(np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64),
                             np.ones((1, 4, 4)), [0], [0.5])])
    assert np.isnan(out['AP50']) and np.isnan(out['AR@10'])


def test_duplicates_wrong_class_and_partial_overlap():
    inst, sem = _scene()
    partial = inst == 3
    partial[2:4, 6:9] = False  # IoU 12 / 18 = 0.667 with instance 3
    masks = [inst == 1, inst == 1, inst == 2, partial, inst == 2]
    labels = [0, 0, 0, 2, 1]  # the last one has the wrong class
    scores = [0.9, 0.8, 0.7, 0.6, 0.95]
    out = _evaluate([_sample(inst, sem, masks, labels, scores)], proposal_nums=(1, 2, 3, 5))
    # class 0: TP, FP (duplicate), TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    # envelope: 1 on (0, 1/2], 2/3 on (1/2, 1] -> AP = 5/6; class 2: 1 at 0.5/0.6, 0 at 0.7
    # class 1 has no GT and is left out of the mean.
    assert out['AP50'] == pytest.approx(round((5 / 6 + 1) / 2 * 100, 2))
    assert out['AP60'] == out['AP50']
    assert out['AP70'] == pytest.approx(round((5 / 6 + 0) / 2 * 100, 2))
    # class-agnostic AR: top-1 is the wrong-class copy of instance 2 (counts: AR ignores class)
    assert out['AR@1'] == pytest.approx(100 / 3, abs=0.01)
    assert out['AR@2'] == pytest.approx(200 / 3, abs=0.01)  # + instance 1
    assert out['AR@3'] == pytest.approx(200 / 3, abs=0.01)  # + a duplicate of instance 1
    # all five: instance 3 found only at IoU 0.50 .. 0.65 (4 of the 10 thresholds)
    assert out['AR@5'] == pytest.approx((2 + 0.4) / 3 * 100, abs=0.01)


def test_match_and_average_precision_helpers():
    ious = np.array([[0.9, 0.6], [0.8, 0.1], [0.0, 0.55]])
    assert match_detections(ious, 0.5).tolist() == [True, False, True]
    # the first detection takes the best free GT; the second finds GT 1 free at 0.55
    assert match_detections(np.array([[0.9, 0.6], [0.95, 0.55]]), 0.5).tolist() == [True, True]
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]),
                             2) == pytest.approx(5 / 6)
    assert average_precision(np.array([0.5]), np.array([False]), 3) == 0


def test_errors():
    with pytest.raises(ValueError, match='thing_class_ids'):
        InstanceAPMetric(())
    inst, sem = _scene()
    bad = _sample(inst, sem, np.zeros((1, 10, 10)), [0], [0.5])
    bad['pred_instances']['masks'] = torch.zeros(1, 5, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match='original image size'):
        InstanceAPMetric(THINGS).process({}, [bad])
    with pytest.raises(KeyError, match='LoadInstanceMap'):
        InstanceAPMetric(THINGS).process({}, [{'pred_instances': {}}])


def _random_case(seed=0, num_images=5, gt_per_class=5, size=(48, 64)):
    """Disjoint rectangular GT instances, 5 per class over all images (5 divides 100), and
    detections: jittered copies, duplicates, wrong classes and random boxes, distinct scores."""
    rng = np.random.default_rng(seed)
    owners = rng.integers(0, num_images, size=(len(THINGS), gt_per_class))
    images = []
    for img in range(num_images):
        inst = np.zeros(size, np.int64)
        sem = np.zeros(size, np.int64)
        classes = [c for c in range(len(THINGS)) for k in range(gt_per_class)
                   if owners[c, k] == img]
        masks, labels = [], []
        for n, c in enumerate(classes):
            row, col = divmod(n, 4)
            top, left = 2 + row * 15, 2 + col * 15
            h, w = rng.integers(8, 14, size=2)
            inst[top:top + h, left:left + w], sem[top:top + h, left:left + w] = n + 1, THINGS[c]
            for _ in range(rng.integers(1, 3)):  # a jittered copy, sometimes two
                dy, dx, dh, dw = rng.integers(-2, 3, size=4)
                m = np.zeros(size, bool)
                m[max(top + dy, 0):top + dy + h + dh, max(left + dx, 0):left + dx + w + dw] = True
                masks.append(m)
                labels.append(c if rng.random() < 0.85 else (c + 1) % len(THINGS))
        for _ in range(rng.integers(0, 3)):  # false positives
            t, l_ = rng.integers(0, size[0] - 8), rng.integers(0, size[1] - 8)
            m = np.zeros(size, bool)
            m[t:t + rng.integers(3, 8), l_:l_ + rng.integers(3, 8)] = True
            masks.append(m)
            labels.append(int(rng.integers(0, len(THINGS))))
        images.append((inst, sem, np.array(masks).reshape(-1, *size), labels))
    scores = rng.permutation(sum(len(i[3]) for i in images)) / 1000 + 0.01
    out, start = [], 0
    for inst, sem, masks, labels in images:
        out.append((inst, sem, masks, labels, scores[start:start + len(labels)]))
        start += len(labels)
    return out


def _coco_eval(case, use_cats, max_dets):
    mask_utils = pytest.importorskip('pycocotools.mask')
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def rle(m):
        r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        r['counts'] = r['counts'].decode()
        return r

    gt = dict(images=[], annotations=[], categories=[dict(id=c) for c in range(len(THINGS))])
    dets = []
    for img, (inst, sem, masks, labels, scores) in enumerate(case):
        gt['images'].append(dict(id=img, height=inst.shape[0], width=inst.shape[1]))
        for i in np.unique(inst[inst > 0]):
            m = inst == i
            gt['annotations'].append(
                dict(id=len(gt['annotations']) + 1, image_id=img, iscrowd=0, area=int(m.sum()),
                     category_id=THINGS.index(int(sem[m][0])), segmentation=rle(m),
                     bbox=list(mask_utils.toBbox(rle(m)))))
        for m, c, s in zip(masks, labels, scores):
            dets.append(dict(image_id=img, category_id=c, segmentation=rle(m), score=float(s)))
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(dets), 'segm')
    ev.params.useCats = use_cats
    ev.params.maxDets = list(max_dets)
    ev.evaluate()
    ev.accumulate()
    return ev


@pytest.mark.parametrize('seed', [0, 1])
def test_matches_pycocotools(seed, capsys):
    case = _random_case(seed)
    ours = _evaluate([_sample(*c) for c in case], iou_thrs=(0.5, 0.6, 0.7, 0.75),
                     proposal_nums=(1, 5, 100))
    ev = _coco_eval(case, use_cats=1, max_dets=(100, ))
    # COCO's IoU thresholds 0.5:0.05:0.95 -> 0.5, 0.6, 0.7, 0.75 are indices 0, 2, 4, 5.
    for name, t in (('AP50', 0), ('AP60', 2), ('AP70', 4), ('AP75', 5)):
        prec = ev.eval['precision'][t, :, :, 0, 0]  # (101 recalls, K)
        # 5 GT per class: all-point AP == mean interpolated precision at recall 0.01..1
        expected = prec[1:].mean(0).mean() * 100
        assert ours[name] == pytest.approx(expected, abs=0.0051), name
        # and COCO's own 101-point value differs by the recall-0 point exactly
        coco_ap = prec.mean(0).mean() * 100
        assert coco_ap == pytest.approx((100 * expected + prec[0].mean() * 100) / 101)
    ev = _coco_eval(case, use_cats=0, max_dets=(1, 5, 100))
    for m, n in enumerate((1, 5, 100)):
        assert ours[f'AR@{n}'] == pytest.approx(ev.eval['recall'][:, 0, 0, m].mean() * 100,
                                                abs=0.0051)
