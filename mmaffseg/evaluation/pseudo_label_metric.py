# Copyright (c) mmaffseg contributors. All rights reserved.
"""Accuracy of weakly supervised pseudo labels, in the layout of PSA's Table 1.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018, Table 1: mIoU of the pseudo labels of the PASCAL
VOC 2012 *train* images against their ground truth, for the three stages of the pipeline:

=================  ==============================================================
row                labels
=================  ==============================================================
CAM                argmax of ``[0.2, CAMs]`` (a constant background score)
CAM + RW           argmax after the random walk with AffinityNet affinities
CAM + RW + dCRF    the walked scores refined by the dense CRF
=================  ==============================================================

(PSA reports 48.0, 58.1 and 59.7.) The IoU arithmetic is mmseg's own
(:meth:`mmseg.evaluation.IoUMetric.intersect_and_union` and ``total_area_to_metrics``): per class
the intersection and union are summed over all images, IoU = intersection / union, and the mIoU
is the mean over the classes with a non-empty union.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

from mmaffseg.ops.psa_stages import PSA_STAGES

#: (stage, Table 1 row name) of the evaluated stages of
#: :data:`~mmaffseg.ops.psa_stages.PSA_STAGES`, in Table 1 order.
TABLE1_ROWS = tuple((s.name, s.table1_row) for s in PSA_STAGES if s.evaluated)
_ROW_NAMES = dict(TABLE1_ROWS)


def label_areas(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                ignore_index: int = 255) -> np.ndarray:
    """Per-class intersection, union, predicted and true areas of one label map.

    Args:
        pred (np.ndarray): ``(H, W)`` predicted labels.
        gt (np.ndarray): ``(H, W)`` ground truth (``ignore_index`` pixels are skipped).
        num_classes (int): Number of segmentation classes (background included).
        ignore_index (int): Ignored ground-truth label. Default: 255.

    Returns:
        np.ndarray: ``(4, num_classes)`` float64: intersection, union, prediction, label areas.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'the pseudo label is {pred.shape} but its ground truth is {gt.shape}; '
                         'they must have the same size')
    areas = IoUMetric.intersect_and_union(
        torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64)),
        num_classes, ignore_index)
    return torch.stack(areas).double().numpy()


def iou_from_areas(areas: np.ndarray) -> np.ndarray:
    """Per-class IoU in % (NaN for a class that is neither predicted nor present)."""
    metrics = IoUMetric.total_area_to_metrics(*torch.from_numpy(np.asarray(areas)),
                                              metrics=['mIoU'])
    return np.asarray(metrics['IoU'], dtype=np.float64) * 100


def format_table1(scores: Dict[str, float], num_images: Optional[int] = None) -> str:
    """PSA's Table 1 as markdown: one row per stage present in ``scores`` (row name -> mIoU)."""
    title = 'Pseudo-label accuracy (PSA Table 1 layout)'
    if num_images is not None:
        title += f', {num_images} images'
    lines = [title, '', '| Method | mIoU (%) |', '|---|---|']
    for _, name in TABLE1_ROWS:
        if name in scores:
            lines.append(f'| {name} | {scores[name]:.2f} |')
    return '\n'.join(lines)


def table1_report(metrics: Dict[str, float]) -> str:
    """PSA's Table 1 of the metrics :class:`PseudoLabelMetric` returned (prefix dropped or not;
    ``num_images`` goes to the title)."""
    metrics = {k.split('/', 1)[-1]: v for k, v in metrics.items()}
    return format_table1({k: v for k, v in metrics.items() if k != 'num_images'},
                         metrics.get('num_images'))


def format_class_table(ious: Dict[str, np.ndarray], classes: Sequence[str]) -> str:
    """Per-class IoU (%) of each row as markdown."""
    lines = ['| Method | ' + ' | '.join(classes) + ' |', '|---' * (len(classes) + 1) + '|']
    for name, values in ious.items():
        cells = ['-' if np.isnan(v) else f'{v:.1f}' for v in values]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


@METRICS.register_module()
class PseudoLabelMetric(BaseMetric):
    """mIoU of the pseudo labels of each pipeline stage (PSA Table 1).

    ``process`` takes data samples that are dicts ``dict(gt=(H, W) array, preds={stage: (H, W)
    array})`` with stage in ``cam`` / ``rw`` / ``rw_crf`` (the PSA runner,
    :class:`~mmaffseg.wsss.PseudoLabelLoop`, builds them); ``compute_metrics`` prints the table
    and returns ``{'CAM': mIoU, 'CAM + RW': mIoU, 'CAM + RW + dCRF': mIoU}`` (the stages
    evaluated) plus ``num_images``, each name prefixed with ``pseudo_label/`` by mmengine. The
    class count and names come from ``dataset_meta``.

    Args:
        ignore_index (int): Ignored ground-truth label. Default: 255.
        collect_device (str): Device for gathering results across ranks. Default: 'cpu'.
        prefix (str, optional): Prefix of the metric names. Default: None (``pseudo_label``).
    """

    default_prefix = 'pseudo_label'

    def __init__(self, ignore_index: int = 255, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index

    @property
    def classes(self) -> Sequence[str]:
        if not self.dataset_meta or 'classes' not in self.dataset_meta:
            raise ValueError('PseudoLabelMetric needs dataset_meta["classes"] (the segmentation '
                             'classes, background included); the runner sets it from the '
                             'dataset')
        return self.dataset_meta['classes']

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Accumulate the areas of every stage of every sample."""
        for sample in data_samples:
            gt = np.asarray(sample['gt'])
            self.results.append({
                stage: label_areas(pred, gt, len(self.classes), self.ignore_index)
                for stage, pred in sample['preds'].items()
            })

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Sum the areas per stage and report the mIoU of each (in %)."""
        if not results:
            return {}
        totals = OrderedDict()
        for stage, _ in TABLE1_ROWS:  # Table 1 order, then any other stage
            if any(stage in r for r in results):
                totals[stage] = None
        for r in results:
            for stage, areas in r.items():
                totals[stage] = areas if totals.get(stage) is None else totals[stage] + areas
        ious = OrderedDict((_ROW_NAMES.get(s, s), iou_from_areas(a)) for s, a in totals.items())
        scores = OrderedDict((name, round(float(np.nanmean(v)), 2)) for name, v in ious.items())
        print_log('\n' + format_table1(scores, len(results)) + '\n\nPer-class IoU (%):\n' +
                  format_class_table(ious, self.classes), logger='current')
        scores['num_images'] = len(results)
        return scores
