# Copyright (c) mmaffseg contributors. All rights reserved.
"""Choosing PSA's background powers (alphas) and affinity power (beta) on a selection set.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018: low / high alpha (affinity labels), the walk's
alpha and beta are hyper-parameters (4 / 32 / 16 / 8 on VOC). Choosing them on the images whose
pseudo labels are then scored makes the score optimistic. Here they are chosen on a separate
*selection set*: images with masks that are not scored (in the demo: training images, whose
masks the networks never see; the scored images are the validation images). Two sweeps, in
pipeline order:

* ``affinity``: low alpha from ``low_alphas`` with high alpha ``high_ratio * low``. A candidate
  is scored by the mIoU of its affinity labels against the masks, *unknown pixels counted as
  wrong* (they enter the union of their true class, no intersection): a proxy for the quality
  of AffinityNet's training targets, trading precision against coverage. (The direct criterion,
  the walk's mIoU after training one AffinityNet per candidate, costs a training each.)
* ``walk``: every (walk alpha, beta) of ``rw_alphas x rw_betas`` with the trained AffinityNet;
  scored by the mIoU of the walked labels (``rw``) or of the walk + dCRF labels (``rw_crf``).

The CAMs come from the runner's cache (``out_dir/cams``), the affinities are predicted once
per image and every candidate is walked from them, so a sweep costs little more than one
pseudo-label pass. :class:`PSAParamSelectionLoop` runs a sweep over its ``test_dataloader``
(nothing else is read) and writes the scores of every candidate and the chosen one to a JSON
file; ``tools/select_psa_params.py`` is its command line. It is the pseudo-label loop's frame
(output folder, record, hooks) around another body: each image goes through the same
per-image step (:class:`~mmaffseg.wsss.image_step.ImageStep`), and each walk candidate's
labels are :func:`~mmaffseg.wsss.pseudo_label_stages.stage_labels`' with its alpha and beta.
"""
import errno
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from mmseg.registry import LOOPS
from torch import Tensor

from mmaffseg.evaluation.pseudo_label_metric import iou_from_areas, label_areas
from mmaffseg.ops.psa_stages import CRF_STAGES, WALK_STAGES
from mmaffseg.postprocessing.dense_crf import DenseCRF
from mmaffseg.utils.atomic_io import atomic_write_bytes
from mmaffseg.utils.config_errors import OutputDirError
from mmaffseg.utils.folder_lock import LOCK_NAME
from mmaffseg.utils.provenance import RECORD_NAME, Provenance

from .affinity_labels import affinity_label_from_crf
from .cam import add_background
from .image_step import ImageStep
from .pseudo_label_loop import PseudoLabelLoop
from .pseudo_label_provenance import (
    CAMS_STAGE,
    IMAGE_RECORD,
    crf_inputs,
    image_list_inputs,
    walk_inputs,
)
from .pseudo_label_stages import batch_crf, crf_stage_labels, stage_labels

SWEEPS = ('affinity', 'walk')
#: The stage whose labels the affinity sweep scores.
AFFINITY_STAGE = 'affinity_labels'


def mean_iou(areas: np.ndarray) -> float:
    """mIoU (%) of summed :func:`label_areas`: mean over the classes with a non-empty union."""
    return float(np.nanmean(iou_from_areas(areas)))


def select_best(areas: Dict[tuple, np.ndarray]) -> Tuple[tuple, Dict[tuple, float]]:
    """The candidate with the highest mIoU; ties go to the earliest candidate.

    Args:
        areas (dict): Candidate -> ``(4, num_classes)`` areas summed over the selection set.

    Returns:
        tuple: The chosen candidate and the mIoU (%) of every candidate.
    """
    if not areas:
        raise ValueError('select_best: no candidates were scored')
    scores = {cand: mean_iou(a) for cand, a in areas.items()}
    best = max(scores, key=lambda c: (scores[c], -list(scores).index(c)))
    return best, scores


def affinity_candidates(low_alphas: Sequence[float], high_ratio: float) -> List[tuple]:
    """``(low_alpha, high_alpha)`` pairs with ``high = high_ratio * low``."""
    if not low_alphas or high_ratio <= 1:
        raise ValueError(f'need low alphas and a high_ratio > 1, got {low_alphas}, {high_ratio}')
    return [(float(low), float(low * high_ratio)) for low in low_alphas]


def affinity_sweep_areas(cams: Tensor, class_ids: Tensor, img_rgb: np.ndarray, gt: np.ndarray,
                         candidates: Sequence[tuple], crf: DenseCRF, num_classes: int,
                         ignore_index: int = 255) -> Dict[tuple, np.ndarray]:
    """Areas of the affinity labels of one image for every ``(low, high)`` candidate.

    Args:
        cams (Tensor): ``(K, H, W)`` CAMs in [0, 1].
        class_ids (Tensor): ``(K,)`` their 0-based classes.
        img_rgb (np.ndarray): ``(H, W, 3)`` uint8 image (for the CRF).
        gt (np.ndarray): ``(H, W)`` ground truth (0 background, k + 1 class k).
        candidates (Sequence[tuple]): ``(low_alpha, high_alpha)`` pairs.
        crf (DenseCRF): The dense CRF of the affinity labels.
        num_classes (int): Segmentation classes, background included.
        ignore_index (int): Unknown label of the affinity labels / ignored ground truth.

    Returns:
        dict: candidate -> ``(4, num_classes)`` areas (unknown pixels predicted as no class).
    """
    alphas = sorted({a for cand in candidates for a in cand})
    q = dict(zip(alphas, crf.batch([add_background(cams, a).cpu().numpy() for a in alphas],
                                   [img_rgb] * len(alphas))))
    return {(low, high): label_areas(
        affinity_label_from_crf(q[low], q[high], class_ids.cpu(), ignore_index), gt,
        num_classes, ignore_index) for low, high in candidates}


def walk_sweep_areas(cams: Tensor, class_ids: Tensor, aff: Tensor, img_rgb: Optional[np.ndarray],
                     gt: np.ndarray, candidates: Sequence[tuple], num_classes: int,
                     radius: int, stride: int, logt: int, crf: Optional[DenseCRF] = None,
                     ignore_index: int = 255) -> Dict[str, Dict[tuple, np.ndarray]]:
    """Areas of the walked labels of one image for every ``(alpha, beta)`` candidate.

    Args:
        cams (Tensor): ``(K, H, W)`` CAMs in [0, 1].
        class_ids (Tensor): ``(K,)`` their 0-based classes.
        aff (Tensor): ``(1, K', P)`` affinities of the image (AffinityNet's ``predict_affinity``).
        img_rgb (np.ndarray, optional): ``(H, W, 3)`` uint8 image; needed with ``crf``.
        gt (np.ndarray): ``(H, W)`` ground truth (0 background, k + 1 class k).
        candidates (Sequence[tuple]): ``(rw_alpha, rw_beta)`` pairs.
        num_classes (int): Segmentation classes, background included.
        radius (int): Affinity radius. stride (int): Affinity stride. logt (int): log2 steps.
        crf (DenseCRF, optional): Also score the walk + dCRF labels (``rw_crf``).
        ignore_index (int): Ignored ground-truth label. Default: 255.

    Returns:
        dict: ``{'rw': {candidate: areas}, 'rw_crf': {...}}`` (``rw_crf`` only with ``crf``).
    """
    stages = [s for s in WALK_STAGES if crf is not None or s not in CRF_STAGES]
    outputs = [stage_labels(cams, class_ids, stages, aff, radius=radius, stride=stride,
                            rw_alpha=alpha, rw_beta=beta, rw_logt=logt)
               for alpha, beta in candidates]
    out: Dict[str, Dict[tuple, np.ndarray]] = {}
    for cand, (labels, _) in zip(candidates, outputs):
        for stage, label in labels.items():
            out.setdefault(stage, {})[cand] = label_areas(label.cpu().numpy(), gt, num_classes,
                                                          ignore_index)
    if crf is not None:  # every candidate's CRF in one batch
        refined = batch_crf(crf, [unaries for _, unaries in outputs], [img_rgb] * len(outputs),
                            fallback=False)
        for cand, q in zip(candidates, refined):
            for stage, label in crf_stage_labels(q, class_ids, ignore_index).items():
                out.setdefault(stage, {})[cand] = label_areas(label.numpy(), gt, num_classes,
                                                              ignore_index)
    return out


@LOOPS.register_module()
class PSAParamSelectionLoop(PseudoLabelLoop):
    """Choose PSA's alphas / beta on the images of ``test_dataloader`` (the selection set).

    Every image must carry its mask (``LoadAnnotations`` in the pipeline); no label PNG is
    written. The result, ``out_dir/selection_<sweep>.json`` unless ``result_file`` is given,
    lists every candidate's mIoU on the selection set and the chosen values.

    Args:
        runner, dataloader, evaluator: As :class:`PseudoLabelLoop` (the evaluator is unused).
        sweep (str): ``affinity`` (low / high alpha; needs the CAM network only) or ``walk``
            (walk alpha / beta; needs the AffinityNet). Default: 'walk'.
        low_alphas (Sequence[float]): Low-alpha candidates. Default: (1, 2, 4, 8).
        high_ratio (float): High alpha = ``high_ratio`` x low alpha (PSA: 32 / 4). Default: 8.
        rw_alphas (Sequence[float]): Walk-alpha candidates. Default: (2, 4, 8, 16).
        rw_betas (Sequence[float]): Beta candidates. Default: (4, 8, 16).
        select_on (str): Walk criterion, ``rw_crf`` (the final pseudo labels) or ``rw``.
            Default: 'rw_crf'.
        result_file (str, optional): Where the JSON goes. Default: None (see above).
        **kwargs: :class:`PseudoLabelLoop` arguments (checkpoints, CAM scales, CRF, ...;
            ``stages`` is set from ``sweep``).
    """

    def __init__(self, runner, dataloader, evaluator=None, sweep: str = 'walk',
                 low_alphas: Sequence[float] = (1, 2, 4, 8), high_ratio: float = 8,
                 rw_alphas: Sequence[float] = (2, 4, 8, 16),
                 rw_betas: Sequence[float] = (4, 8, 16), select_on: str = 'rw_crf',
                 result_file: Optional[str] = None, **kwargs) -> None:
        if sweep not in SWEEPS:
            raise ValueError(f'sweep must be one of {SWEEPS}, got {sweep!r}')
        if select_on not in WALK_STAGES:
            raise ValueError(f'select_on must be one of {WALK_STAGES}, got {select_on!r}')
        kwargs['stages'] = (AFFINITY_STAGE, ) if sweep == 'affinity' else (select_on, )
        super().__init__(runner, dataloader, None, **kwargs)
        self.sweep = sweep
        if sweep == 'affinity':
            self.candidates = affinity_candidates(low_alphas, high_ratio)
            self.names = ('low_alpha', 'high_alpha')
        else:
            self.candidates = [(float(a), float(b)) for a in rw_alphas for b in rw_betas]
            self.names = ('rw_alpha', 'rw_beta')
        if not self.candidates:
            raise ValueError('PSAParamSelectionLoop: no candidates to compare')
        self.select_on = select_on if sweep == 'walk' else AFFINITY_STAGE
        self.result_file = result_file or osp.join(self.out_dir, f'selection_{sweep}.json')
        self.result: dict = {}

    def run(self) -> dict:
        """Score every candidate on the selection set; write the result, return the chosen
        values (the frame is :meth:`PseudoLabelLoop.run`'s)."""
        super().run()
        return self.result['selected']

    def _check_outputs(self) -> int:
        if get_dist_info()[1] > 1:
            raise RuntimeError('PSAParamSelectionLoop runs in one process (no --launcher)')
        free = super()._check_outputs()
        self._check_result_file()
        return free

    def _work(self, dataset, free: int) -> dict:
        self._select(dataset)
        return {}  # no metrics: the result is the file

    def _provenance(self, dataset, stages=None) -> Provenance:
        """The record of ``out_dir``: the CAM cache and this sweep's result."""
        prov = super()._provenance(dataset, stages=())
        inputs = dict(sweep=self.sweep, candidates=[list(c) for c in self.candidates],
                      select_on=self.select_on, ignore_index=self.ignore_index,
                      **image_list_inputs([self._paths(dataset, index)[0]
                                           for index in range(len(dataset))]))
        if self.select_on in CRF_STAGES:
            inputs['crf'] = crf_inputs(self.crf)
        if self.sweep == 'walk':
            inputs.update(walk_inputs(self.aff_checkpoint, self._aff_model()),
                          rw_logt=self.stage_settings['rw_logt'])
        return prov.stage(f'selection_{self.sweep}', inputs, [CAMS_STAGE])

    def _regenerated_files(self) -> List[str]:
        return [self.result_file]

    def _check_result_file(self) -> None:
        """Refuse a result file that is a folder, or the output folder's record or lock (the
        result file is removed before the run and written after it)."""
        if osp.isdir(self.result_file) and not osp.islink(self.result_file):
            raise OutputDirError(
                errno.EISDIR, f'--result (result_file): {self.result_file} is a folder; name '
                'the JSON file to write (nothing was removed)')
        ours = [osp.join(self.out_dir, name) for name in (RECORD_NAME, IMAGE_RECORD, LOCK_NAME)]
        if osp.realpath(self.result_file) in {osp.realpath(p) for p in ours}:
            raise OutputDirError(
                errno.EINVAL, f'--result (result_file): {self.result_file} is a record of the '
                f'output folder {self.out_dir}, which the run keeps; name another file')

    def _select(self, dataset) -> None:
        num_classes = len(dataset.metainfo['classes'])
        totals: Dict[str, Dict[tuple, np.ndarray]] = {}
        images = []
        bar = ProgressBar(len(dataset)) if len(dataset) else None
        with self._inference(self.needs_affinity_net) as (cam_model, aff_model):
            step = self._step(cam_model, aff_model)
            for index in range(len(dataset)):
                images.append(self._paths(dataset, index)[0])
                for stage, per_cand in self._image_areas(dataset, index, step,
                                                         num_classes).items():
                    for cand, a in per_cand.items():
                        stage_totals = totals.setdefault(stage, {})
                        stage_totals[cand] = stage_totals.get(cand, 0) + a
                if bar is not None:
                    bar.update()
        if not images:
            raise ValueError('the selection set (test_dataloader.dataset) is empty')
        best, scores = select_best(totals[self.select_on])
        rows = []
        for cand in self.candidates:
            row = dict(zip(self.names, cand))
            row.update({f'mIoU {stage}': round(mean_iou(t[cand]), 2)
                        for stage, t in totals.items()})
            rows.append(row)
        self.result = dict(sweep=self.sweep, select_on=self.select_on,
                           selection_images=images, candidates=rows,
                           selected=dict(zip(self.names, best)),
                           selected_miou=round(scores[best], 2))
        atomic_write_bytes(self.result_file, json.dumps(self.result, indent=2).encode())
        print_log(f'{self.sweep} sweep on {len(images)} selection images, criterion mIoU of '
                  f'{self.select_on}: ' + '; '.join(
                      f'{c}: {scores[c]:.2f}' for c in self.candidates) +
                  f'\nselected {self.result["selected"]} ({scores[best]:.2f} mIoU); written '
                  f'to {self.result_file}', logger='current')

    def _image_areas(self, dataset, index: int, step: ImageStep,
                     num_classes: int) -> Dict[str, Dict[tuple, np.ndarray]]:
        """The areas of every candidate's labels of one selection image."""
        img_path, cache, _ = self._paths(dataset, index)
        try:
            image = step.load(dataset, index)
            if image.gt is None or image.class_labels is None:
                raise ValueError('a selection image needs its mask (LoadAnnotations) and '
                                 'image-level labels (LoadImageLevelLabels) in the pipeline')
            # the CAM cache is shared with make_pseudo_labels: the step computes them as it does
            step.cams(image, cache)
        except ValueError as e:
            raise ValueError(f'{img_path}: {e}') from None
        if self.sweep == 'affinity':
            return {AFFINITY_STAGE: affinity_sweep_areas(
                image.cams.cpu(), image.class_ids.cpu(), image.img_rgb, image.gt,
                self.candidates, self.crf, num_classes, self.ignore_index)}
        aff, grid = step.affinities(image)
        return walk_sweep_areas(
            image.cams, image.class_ids, aff, image.img_rgb, image.gt, self.candidates,
            num_classes, **grid, logt=self.stage_settings['rw_logt'],
            crf=self.crf if self.select_on in CRF_STAGES else None,
            ignore_index=self.ignore_index)
