# Copyright (c) mmaffseg contributors. All rights reserved.
"""The official Cityscapes instance-level evaluation (AP, AP50) of instance predictions.

Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016,
Sec. 4.2: average precision of instance masks over the 8 thing classes, evaluated by
``cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling`` (the script of the test
server). Predictions are handed to it in its own file format, per image:

- ``<city>_<seq>_<frame>_leftImg8bit.txt``, one line per instance:
  ``masks/<city>_<seq>_<frame>_leftImg8bit_<k>.png <labelId> <confidence>`` (path relative to
  the text file, the Cityscapes ``labelId`` of the class, not the trainId);
- ``masks/..._<k>.png``: a binary uint8 mask (non-zero = instance) at the image's original size.

and the ground truth is the dataset's own ``*_gtFine_instanceIds.png``. The same folder is a
test-server submission (zip it).

How the official numbers differ from :class:`~mmaffseg.evaluation.InstanceAPMetric`:

- AP averages over the IoU thresholds 0.50, 0.55, ..., 0.95 (AP50 is the first) and over the
  classes with ground truth; a match needs IoU strictly above the threshold (ours: >=);
- GT instances below 100 pixels are left out, and a prediction matching none is not a false
  positive when more than the threshold's share of it lies on void, crowd or such small
  instances (ours counts void as removed from the mask and small instances as instances);
- when several predictions match one GT instance, the highest-scoring one is the true
  positive (ours: greedy matching in score order, each prediction taking its best free GT);
- precision is integrated without the interpolation envelope (ours: PASCAL VOC all-point AP).

With no false positives (each prediction matching one GT instance) both give the recall, so
perfect predictions give 100 in both and a class left out drops both by that class's share.
"""
import contextlib
import copy
import io
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.registry import METRICS

from ..datasets.cityscapes_labels import CITYSCAPES_CLASSES

#: trainId -> labelId of the Cityscapes thing classes.
THING_TRAIN_TO_LABEL_ID = {c.train_id: c.label_id for c in CITYSCAPES_CLASSES if c.has_instances}


def write_cityscapes_instances(out_dir: str, image_name: str, masks: np.ndarray,
                               label_ids: Sequence[int], scores: Sequence[float]) -> str:
    """Write one image's instances in the format of the Cityscapes instance evaluation.

    Args:
        out_dir (str): Prediction folder (the evaluator's ``predictionPath``).
        image_name (str): The image's file name without extension, e.g.
            ``frankfurt_000000_000294_leftImg8bit``: the evaluator finds the text file by its
            ``<city>_<seq>_<frame>`` prefix.
        masks (np.ndarray): (N, H, W) bool, at the original image size.
        label_ids (Sequence[int]): Cityscapes labelId of each mask.
        scores (Sequence[float]): Confidence of each mask.

    Returns:
        str: Path of the text file.
    """
    if len(masks) != len(label_ids) or len(masks) != len(scores):
        raise ValueError(f'{image_name}: {len(masks)} masks but {len(label_ids)} labels and '
                         f'{len(scores)} scores')
    mask_dir = osp.join(out_dir, 'masks')
    os.makedirs(mask_dir, exist_ok=True)
    lines = []
    for k, (mask, label_id, score) in enumerate(zip(masks, label_ids, scores)):
        rel = f'masks/{image_name}_{k}.png'
        if not cv2.imwrite(osp.join(out_dir, rel), np.asarray(mask, bool).astype(np.uint8) * 255):
            raise OSError(f'could not write the mask {osp.join(out_dir, rel)}')
        lines.append(f'{rel} {int(label_id)} {float(score):.6f}\n')
    txt = osp.join(out_dir, f'{image_name}.txt')
    with open(txt, 'w', encoding='utf-8') as f:
        f.writelines(lines)
    return txt


def evaluate_cityscapes_instances(pred_txts: Sequence[str], gt_files: Sequence[str],
                                  pred_dir: str) -> dict:
    """Run cityscapesscripts' ``evalInstanceLevelSemanticLabeling`` on written predictions.

    The steps of its ``evaluateImgLists`` (instance labels, GT instances, matching,
    ``evaluateMatches``, ``computeAverages``, ``prepareJSONDataForResults``), all its own code,
    without its debug dump of the matches to ``matches.json`` in the current folder, which
    fails under numpy >= 2 (``np.count_nonzero`` returns ``np.int64``, which ``json`` cannot
    write). The evaluator's global ``args`` are copied, not changed; its ground-truth cache
    (``gtInstances.json``, rebuilt on every call) goes to ``pred_dir``, never into the
    installed package; its printing is captured.

    Args:
        pred_txts (Sequence[str]): Text file of each image (:func:`write_cityscapes_instances`).
        gt_files (Sequence[str]): ``*_gtFine_instanceIds.png`` of each image, same order.
        pred_dir (str): The folder holding the predictions.

    Returns:
        dict: The evaluator's result dict (``averages`` with ``allAp``, ``allAp50%`` and
        per-class ``ap`` / ``ap50%``, in [0, 1]; NaN for classes without GT; and
        ``resultApMatrix``).

    Raises:
        RuntimeError: The evaluator refused the files (its message is included).
    """
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as cs_eval
    args = copy.deepcopy(cs_eval.args)
    pred_dir = osp.abspath(pred_dir)
    args.predictionPath = pred_dir
    args.predictionWalk = None
    args.gtInstancesFile = osp.join(pred_dir, 'gtInstances.json')
    args.JSONOutput = False
    args.quiet = True
    args.colorized = False
    if osp.exists(args.gtInstancesFile):  # a stale cache would pair images with wrong GT
        os.remove(args.gtInstancesFile)
    preds = [osp.abspath(p) for p in pred_txts]
    gts = [osp.abspath(g) for g in gt_files]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            cs_eval.setInstanceLabels(args)
            gt_instances = cs_eval.getGtInstances(gts, args)
            matches = cs_eval.matchGtWithPreds(preds, gts, gt_instances, args)
            aps = _evaluate_matches(cs_eval, matches, args)
            return cs_eval.prepareJSONDataForResults(cs_eval.computeAverages(aps, args), aps,
                                                     args)
    except SystemExit as e:  # its printError() exits the process
        raise RuntimeError('cityscapesscripts evalInstanceLevelSemanticLabeling refused the '
                           f'predictions in {pred_dir}: {printed.getvalue().strip()}') from e


def _evaluate_matches(cs_eval, matches: dict, args) -> np.ndarray:
    """The evaluator's ``evaluateMatches``, one (class, IoU threshold) at a time.

    Its AP computation indexes an empty score list, and crashes with ``IndexError``, when a
    class has GT instances and predictions but every prediction is ignored (it lies on void or
    on GT instances below the minimum size) and no GT instance is matched. Its own definition
    gives AP 0 there (all GT instances missed, no counted prediction), which is what such a
    (class, threshold) gets here; every other entry is its code's value.
    """
    labels, overlaps = list(args.instLabels), np.asarray(args.overlaps)
    aps = np.zeros((1, len(labels), len(overlaps)))
    one = copy.copy(args)
    one.distanceAvailable = False  # as evaluateMatches without distances: min region size only
    for li, label in enumerate(labels):
        for oi, overlap in enumerate(overlaps):
            one.instLabels, one.overlaps = [label], np.asarray([overlap])
            try:
                aps[0, li, oi] = cs_eval.evaluateMatches(matches, one)[0, 0, 0]
            except IndexError:
                aps[0, li, oi] = 0.0
    return aps


@METRICS.register_module()
class CityscapesInstanceMetric(BaseMetric):
    """Cityscapes' official instance-level AP and AP50 (see the module docstring).

    Writes every image's ``pred_instances`` (``masks`` (N, H, W) bool at the original size,
    ``labels`` (N,) indices into ``thing_class_ids``, ``scores`` (N,)) in the evaluator's
    format and runs ``evalInstanceLevelSemanticLabeling`` against the
    ``*_gtFine_instanceIds.png`` next to each sample's ``seg_map_path``.

    Args:
        thing_class_ids (Sequence[int]): Cityscapes trainIds of the predicted ``labels``, e.g.
            (11, ..., 18); each is written as its labelId.
        output_dir (str, optional): Where the predictions (and the evaluator's GT cache) go; kept
            after evaluation. Needed on several machines (a folder all of them see) and with
            ``format_only``. Defaults to None: a temporary folder, emptied after every
            evaluation.
        format_only (bool): Only write the predictions (a test-server submission of the test
            split, which has no public ground truth). Defaults to False.
        seg_map_suffix (str): Suffix of ``seg_map_path``. Defaults to
            ``'_gtFine_labelTrainIds.png'``.
        instance_suffix (str): Suffix of the GT instance file that replaces it. Defaults to
            ``'_gtFine_instanceIds.png'``.
        collect_device (str): Device for collecting results across ranks. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to None (``cityscapes``:
            ``cityscapes/AP``, ``cityscapes/AP50``, apart from InstanceAPMetric's ``AP``,
            ``AP50``).
    """
    default_prefix = 'cityscapes'

    def __init__(self,
                 thing_class_ids: Sequence[int] = tuple(THING_TRAIN_TO_LABEL_ID),
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 seg_map_suffix: str = '_gtFine_labelTrainIds.png',
                 instance_suffix: str = '_gtFine_instanceIds.png',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        try:
            import cityscapesscripts  # noqa: F401
        except ImportError as e:
            raise ImportError('CityscapesInstanceMetric runs the official evaluator of '
                              'cityscapesscripts: pip install cityscapesscripts (part of '
                              "mmaffseg's optional extras)") from e
        unknown = [c for c in thing_class_ids if int(c) not in THING_TRAIN_TO_LABEL_ID]
        if unknown or not thing_class_ids:
            raise ValueError(f'CityscapesInstanceMetric: thing_class_ids must be Cityscapes '
                             f'thing trainIds {tuple(THING_TRAIN_TO_LABEL_ID)}, got '
                             f'{tuple(thing_class_ids)}')
        if format_only and output_dir is None:
            raise ValueError('CityscapesInstanceMetric: format_only=True needs output_dir, the '
                             'folder to write the submission to')
        self.label_ids = [THING_TRAIN_TO_LABEL_ID[int(c)] for c in thing_class_ids]
        self.format_only = format_only
        self.seg_map_suffix = seg_map_suffix
        self.instance_suffix = instance_suffix
        self.temporary = output_dir is None
        if self.temporary:  # one folder for all ranks of this machine, made by rank 0
            folder = [tempfile.mkdtemp(prefix='cityscapes_instances_') if is_main_process()
                      else None]
            broadcast_object_list(folder)
            output_dir = folder[0]
        self.output_dir = osp.abspath(output_dir)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Write each image's instances; keep the paths of its text file and GT file."""
        for sample in data_samples:
            if 'pred_instances' not in sample:
                raise KeyError('CityscapesInstanceMetric needs pred_instances, the output of an '
                               'instance segmentor such as InstanceEmbeddingSegmentor')
            pred = sample['pred_instances']
            name = osp.splitext(osp.basename(sample['img_path']))[0]
            labels = pred['labels'].cpu().numpy().astype(np.int64)
            if labels.size and (labels.min() < 0 or labels.max() >= len(self.label_ids)):
                raise ValueError(f'{name}: predicted labels {sorted(set(labels.tolist()))} are '
                                 f'not indices into the {len(self.label_ids)} thing_class_ids')
            masks = pred['masks'].cpu().numpy().astype(bool)
            if 'ori_shape' in sample and tuple(masks.shape[-2:]) != tuple(sample['ori_shape']):
                raise ValueError(f'{name}: predicted masks {tuple(masks.shape[-2:])} differ in '
                                 f'size from the image {tuple(sample["ori_shape"])}; the '
                                 'Cityscapes evaluator needs masks at the original size')
            txt = write_cityscapes_instances(
                self.output_dir, name, masks,
                [self.label_ids[i] for i in labels], pred['scores'].float().cpu().tolist())
            gt = ''
            if not self.format_only:
                seg = sample['seg_map_path']
                if not seg.endswith(self.seg_map_suffix):
                    raise ValueError(f'CityscapesInstanceMetric: {seg} does not end with '
                                     f'seg_map_suffix={self.seg_map_suffix!r}; set it (and '
                                     'instance_suffix) to match the dataset')
                gt = seg[:-len(self.seg_map_suffix)] + self.instance_suffix
            self.results.append((txt, gt))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        """``AP`` (IoU 0.50:0.95) and ``AP50`` of the official evaluator, in percent."""
        if self.format_only:
            print_log(f'Cityscapes instance predictions of {len(results)} images written to '
                      f'{self.output_dir}', logger='current')
            return dict()
        txts, gts = zip(*results) if results else ((), ())
        try:
            out = evaluate_cityscapes_instances(txts, gts, self.output_dir)
        finally:
            if self.temporary:
                shutil.rmtree(self.output_dir, ignore_errors=True)
                os.makedirs(self.output_dir, exist_ok=True)
        avg = out['averages']
        lines = [f'{name:<12} AP {v["ap"] * 100:6.2f}  AP50 {v["ap50%"] * 100:6.2f}'
                 for name, v in avg['classes'].items()]
        print_log('Cityscapes instance-level evaluation (cityscapesscripts):\n' +
                  '\n'.join(lines), logger='current')
        return dict(AP=self._percent(avg['allAp']), AP50=self._percent(avg['allAp50%']))

    @staticmethod
    def _percent(value: float) -> float:
        return float(np.round(float(value) * 100, 2))

    def __del__(self) -> None:
        if getattr(self, 'temporary', False) and is_main_process():
            shutil.rmtree(self.output_dir, ignore_errors=True)
