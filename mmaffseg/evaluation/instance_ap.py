# Copyright (c) mmaffseg contributors. All rights reserved.
"""Mask average precision per class and class-agnostic average recall of instance predictions.

The evaluation of Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance
Segmentation via Deep Metric Learning", arXiv:1703.10277, 2017 (after Hariharan et al.,
"Simultaneous Detection and Segmentation", ECCV 2014): average precision of masks at IoU 0.5,
0.6 and 0.7, computed per class and averaged over the classes, and class-agnostic average
recall against the number of proposals per image.

Definitions (all on the original image grid; void pixels of the ground truth, id
``ignore_index`` of the instance map, are removed from every predicted mask first):

- Matching, per image and class, detections in decreasing score order: a detection is a true
  positive when some not yet matched GT instance has IoU >= the threshold with it; it takes the
  one of highest IoU. Otherwise (no overlap, or a duplicate of a matched instance) it is a false
  positive. This is COCO's rule; PASCAL VOC's differs only when a detection's best GT is taken
  and a second GT also passes the threshold, which cannot happen for disjoint GT masks (an
  instance map) at thresholds above 0.5.
- AP: PASCAL VOC 2010+ "all-point" AP, the area under the precision envelope
  ``p(r) = max_{r' >= r} precision(r')``, per class over all images; the reported value is the
  mean over the classes that have GT instances (classes without any are left out).
  pycocotools' ``COCOeval`` instead averages the envelope at the 101 recalls 0, 0.01, ..., 1.
  Where a class has ``n`` GT instances with ``n`` dividing 100, our AP equals COCO's
  interpolated precision averaged over the 100 recalls 0.01, ..., 1 (COCO's own value adds the
  recall-0 point, the maximum precision, and divides by 101).
- AR@N: class-agnostic; the N highest-scoring detections of each image are matched as above
  regardless of class, recall is the share of all GT instances matched, averaged over the IoU
  thresholds 0.50, 0.55, ..., 0.95; pycocotools' recall with ``useCats = 0`` and
  ``maxDets = N`` is the same number.

Crowd regions (thing pixels with no instance id) count as background.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable
from torch import Tensor

from ..structures.instance_map import instance_classes

#: COCO's IoU thresholds of average recall: 0.50, 0.55, ..., 0.95.
AR_IOU_THRS = tuple(np.linspace(0.5, 0.95, 10))


def mask_ious(pred_masks: Tensor, instance_map: Tensor, gt_ids: Tensor,
              ignore_index: int = 255) -> np.ndarray:
    """IoU of every predicted mask with every GT instance of one image.

    Args:
        pred_masks (Tensor): Bool (N, H, W).
        instance_map (Tensor): GT instance ids (H, W); ``ignore_index`` is void and removed from
            the predicted masks.
        gt_ids (Tensor): The G instance ids to compare with, shape (G,).
        ignore_index (int): Void id. Defaults to 255.

    Returns:
        np.ndarray: (N, G) float64.
    """
    inst = instance_map.reshape(-1).long()
    gt_ids = gt_ids.to(inst.device).long()
    # Compact labels: 1..G for the listed instances, 0 for everything else.
    lut = inst.new_zeros(max(int(inst.max()) if inst.numel() else 0, ignore_index) + 1)
    lut[gt_ids] = torch.arange(1, len(gt_ids) + 1, device=inst.device)
    lab = lut[inst.clamp_min(0)]
    keep = inst != ignore_index
    gt_area = torch.bincount(lab[keep], minlength=len(gt_ids) + 1)[1:]
    masks = pred_masks.reshape(pred_masks.shape[0], inst.numel()).to(inst.device).bool()
    pred_area = (masks & keep).sum(1)  # (N,)
    # Intersections only need the pixels of GT instances: (N, K) -> (N, G + 1).
    on_gt = (lab > 0).nonzero().squeeze(1)
    inter = masks.new_zeros((masks.shape[0], len(gt_ids) + 1), dtype=torch.float64)
    inter.index_add_(1, lab[on_gt], masks[:, on_gt].double())
    inter = inter[:, 1:]
    union = pred_area[:, None] + gt_area[None] - inter
    ious = inter / union.clamp_min(1)
    return ious.cpu().numpy()


def match_detections(ious: np.ndarray, iou_thr: float) -> np.ndarray:
    """Greedy matching of one image's detections, given in decreasing score order.

    Args:
        ious (np.ndarray): (D, G) IoUs, rows sorted by decreasing score.
        iou_thr (float): Minimum IoU of a match.

    Returns:
        np.ndarray: (D,) bool, True for the true positives.
    """
    tp = np.zeros(ious.shape[0], dtype=bool)
    free = np.ones(ious.shape[1], dtype=bool)
    for d in range(ious.shape[0]):
        cand = np.where(free & (ious[d] >= iou_thr))[0]
        if cand.size:
            g = cand[np.argmax(ious[d, cand])]
            free[g] = False
            tp[d] = True
    return tp


def average_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """PASCAL VOC all-point AP of detections pooled over images.

    Args:
        scores (np.ndarray): (D,) detection scores.
        tp (np.ndarray): (D,) bool, the matching result of each detection.
        num_gt (int): Number of GT instances (> 0).

    Returns:
        float: AP in [0, 1].
    """
    order = np.argsort(-scores, kind='mergesort')
    hits = tp[order].astype(np.float64)
    tps, fps = np.cumsum(hits), np.cumsum(1 - hits)
    recall = np.concatenate([[0.0], tps / num_gt, [1.0]])
    precision = np.concatenate([[0.0], tps / np.maximum(tps + fps, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    step = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[step + 1] - recall[step]) * precision[step + 1]))


@METRICS.register_module()
class InstanceAPMetric(BaseMetric):
    """Mask AP per class at several IoUs and class-agnostic AR@N (see the module docstring).

    Reads ``pred_instances`` (``masks`` (N, H, W) bool, ``labels`` (N,) indices into
    ``thing_class_ids``, ``scores`` (N,)) and the ground truth ``gt_instance_map`` with
    ``gt_sem_seg`` (the class of a GT instance is the semantic label of most of its pixels) of
    every data sample, at the original image size.

    Args:
        thing_class_ids (Sequence[int]): Semantic labels of the instance classes, in the order
            of the predicted ``labels``.
        iou_thrs (Sequence[float]): IoU thresholds of AP. Defaults to (0.5, 0.6, 0.7).
        proposal_nums (Sequence[int]): Ns of AR@N. Defaults to (10, 50, 100).
        ignore_index (int): Void id of the instance map. Defaults to 255.
        collect_device (str): Device for collecting results across ranks. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to None.
    """

    def __init__(self,
                 thing_class_ids: Sequence[int],
                 iou_thrs: Sequence[float] = (0.5, 0.6, 0.7),
                 proposal_nums: Sequence[int] = (10, 50, 100),
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not thing_class_ids:
            raise ValueError('InstanceAPMetric needs thing_class_ids, the semantic labels of '
                             'the instance classes, e.g. (11, ..., 18) for Cityscapes')
        self.thing_class_ids = tuple(int(c) for c in thing_class_ids)
        self.iou_thrs = tuple(float(t) for t in iou_thrs)
        self.proposal_nums = tuple(int(n) for n in proposal_nums)
        self.ignore_index = ignore_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep, per image, scores, labels, GT classes and the IoU matrix (not the masks)."""
        for sample in data_samples:
            if 'pred_instances' not in sample or 'gt_instance_map' not in sample:
                raise KeyError('InstanceAPMetric needs pred_instances (an instance segmentor '
                               'such as InstanceEmbeddingSegmentor) and gt_instance_map '
                               '(LoadInstanceMap + PackSegInstanceInputs in the test pipeline)')
            pred = sample['pred_instances']
            inst_map = sample['gt_instance_map']['data'][0]
            sem = sample['gt_sem_seg']['data'][0]
            ids, classes = instance_classes(inst_map, sem, self.thing_class_ids,
                                            self.ignore_index)
            ids, classes = ids[classes >= 0], classes[classes >= 0]
            masks = pred['masks']
            if masks.shape[-2:] != inst_map.shape:
                raise ValueError(f'predicted masks {tuple(masks.shape[-2:])} and the GT instance '
                                 f'map {tuple(inst_map.shape)} differ in size; predict at the '
                                 'original image size')
            self.results.append(
                dict(
                    scores=pred['scores'].detach().float().cpu().numpy(),
                    labels=pred['labels'].detach().cpu().numpy().astype(np.int64),
                    gt_labels=classes.cpu().numpy(),
                    ious=mask_ious(masks, inst_map, ids, self.ignore_index)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """AP at every IoU threshold, their mean ``AP``, and ``AR@N`` (percentages)."""
        metrics = dict()
        per_class = np.full((len(self.thing_class_ids), len(self.iou_thrs)), np.nan)
        for c in range(len(self.thing_class_ids)):
            num_gt = sum(int((r['gt_labels'] == c).sum()) for r in results)
            if num_gt == 0:
                continue
            for t, thr in enumerate(self.iou_thrs):
                scores, tps = [], []
                for r in results:
                    dets = np.where(r['labels'] == c)[0]
                    dets = dets[np.argsort(-r['scores'][dets], kind='mergesort')]
                    ious = r['ious'][dets][:, r['gt_labels'] == c]
                    scores.append(r['scores'][dets])
                    tps.append(match_detections(ious, thr))
                per_class[c, t] = average_precision(
                    np.concatenate(scores), np.concatenate(tps), num_gt)
        has_gt = ~np.isnan(per_class[:, 0])
        if not has_gt.any():
            print_log('InstanceAPMetric: no GT instance of any class; AP is NaN',
                      logger='current')
        for t, thr in enumerate(self.iou_thrs):
            metrics[f'AP{int(round(thr * 100))}'] = self._percent(per_class[has_gt, t])
        metrics['AP'] = self._percent(per_class[has_gt])

        num_gt = sum(len(r['gt_labels']) for r in results)
        for n in self.proposal_nums:
            recalls = []
            for thr in AR_IOU_THRS:
                hit = 0
                for r in results:
                    top = np.argsort(-r['scores'], kind='mergesort')[:n]
                    hit += int(match_detections(r['ious'][top], thr).sum())
                recalls.append(hit / num_gt if num_gt else np.nan)
            metrics[f'AR@{n}'] = self._percent(np.asarray(recalls))
        self._log_table(per_class)
        return metrics

    @staticmethod
    def _percent(values: np.ndarray) -> float:
        return float(np.round(np.mean(values) * 100, 2)) if values.size else float('nan')

    def _log_table(self, per_class: np.ndarray) -> None:
        names = (self.dataset_meta or {}).get('classes')
        table = PrettyTable()
        table.add_column('Class', [
            names[i] if names and i < len(names) else str(i) for i in self.thing_class_ids
        ])
        for t, thr in enumerate(self.iou_thrs):
            table.add_column(f'AP{int(round(thr * 100))}',
                             [f'{v * 100:.2f}' for v in per_class[:, t]])
        print_log('per class mask AP:\n' + table.get_string(),
                  logger=MMLogger.get_current_instance())
