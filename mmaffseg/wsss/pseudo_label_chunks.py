# Copyright (c) mmaffseg contributors. All rights reserved.
"""The work of the PSA pseudo-label loop on a chunk of images, one image at a time.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

:class:`ChunkWork` is the part of :class:`~mmaffseg.wsss.PseudoLabelLoop` that runs a chunk:
the network passes of its images (:class:`~mmaffseg.wsss.image_step.ImageStep`: CAMs, walk,
the labels that need no CRF), the submission of their dense CRFs to the pool, and, when those
are collected, the CRF labels, the evaluation and the bookkeeping of processed, skipped and
failed images. :class:`ImageState` carries one image from its network pass to its CRF pass.
"""
import logging
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor

from mmaffseg.evaluation.pseudo_label_metric import table1_report
from mmaffseg.ops.psa_stages import EVALUATED_STAGES, WALK_STAGES

from .cam_inference import PreparedCAM
from .crf_pool import PendingCRF, submit_batch_crf
from .label_store import OutputFolderError, PseudoLabelStore, read_png
from .pseudo_label_stages import batch_crf, compute_cams, crf_stage_labels


class PseudoLabelConfigError(RuntimeError):
    """A mistake in the config that would fail every image: stop the run."""


class ImageState:
    """The state of one image between the model pass and the CRF pass of a chunk."""

    def __init__(self, index: int, img_path: str, paths: Dict[str, str]) -> None:
        self.index = index
        self.img_path = img_path
        self.paths = paths  # stage -> output file
        self.todo: List[str] = PseudoLabelStore.missing(paths)
        self.gt: Optional[np.ndarray] = None
        self.img_rgb: Optional[np.ndarray] = None
        self.class_ids: Optional[Tensor] = None
        self.crf_inputs: Dict[str, np.ndarray] = {}  # name -> (C, H, W) probabilities


class ChunkWork:
    """A chunk's network passes, CRFs, outputs and evaluation; mixed into the loop, whose
    attributes it uses (``store``, ``crf``, ``evaluator``, ``ignore_index``, ``failures``,
    ``processed``, ``skipped``, the CAM settings) and whose ``_paths`` / ``_step`` it calls;
    also the CAMs of an image (cached) and the closing report."""

    def _model_passes(self, dataset, chunk: List[int], cam_model, aff_model,
                      bar) -> List[ImageState]:
        """The network passes of a chunk's images (the failed ones are recorded)."""
        images = []
        for index in chunk:
            img_path, cache, paths = self._paths(dataset, index)
            image = ImageState(index, img_path, paths)
            try:
                self._model_pass(dataset, image, cache, cam_model, aff_model)
                images.append(image)
            except (PseudoLabelConfigError, OutputFolderError):
                raise
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                self._fail(image, e, bar)
        return images

    def _submit_crfs(self, images: List[ImageState]) -> PendingCRF:
        """All CRFs of a chunk submitted to one pool."""
        return submit_batch_crf(self.crf, [image.crf_inputs for image in images],
                                [image.img_rgb for image in images])

    def _crf_passes(self, images: List[ImageState], pending: PendingCRF, bar) -> None:
        """Collect a chunk's CRFs (on an error, image by image to find the bad one), write
        and evaluate."""
        refined = pending.result()
        for image, q in zip(images, refined):
            try:
                if image.crf_inputs:
                    q = q if q is not None else batch_crf(self.crf, [image.crf_inputs],
                                                          [image.img_rgb], fallback=False)[0]
                    self._crf_pass(image, q)
                self._evaluate(image)
            except OutputFolderError:
                raise
            except Exception as e:  # noqa: BLE001
                self._fail(image, e, bar)
                continue
            (self.processed if image.todo else self.skipped).append(image.index)
            if bar is not None:
                bar.update()

    def _fail(self, image: ImageState, error: Exception, bar) -> None:
        reason = ' '.join(f'{type(error).__name__}: {error}'.split())  # one line per image
        self.failures.append((image.img_path, reason))
        print_log(f'pseudo labels: skipping {image.img_path}: {reason}', logger='current',
                  level=logging.WARNING)
        if bar is not None:
            bar.update()

    def _model_pass(self, dataset, image: ImageState, cache: str, cam_model, aff_model) -> None:
        """Load the sample, compute CAMs / walk, write the outputs that need no CRF."""
        step = self._step(cam_model, aff_model)
        sample = step.load(dataset, image.index)  # unreadable images raise here
        image.gt = sample.gt
        if not image.todo:
            return
        if sample.class_labels is None:
            raise PseudoLabelConfigError(
                f'the dataset sample of {image.img_path} has no gt_class_labels: add '
                'LoadImageLevelLabels to the pseudo-label pipeline and pack it with '
                "PackSegInputs(meta_keys=(..., 'gt_class_labels'))")
        step.cams(sample, cache)
        image.img_rgb, image.class_ids = sample.img_rgb, sample.class_ids
        self.store.clear_interrupted([image.paths[stage] for stage in image.todo])
        # the stages without the walk first: their labels are written even if the walk fails
        for walk in (False, True):
            stages = [s for s in image.todo if (s in WALK_STAGES) == walk]
            if stages:
                labels, unaries = step.stage_labels(sample, stages)
                for stage, label in labels.items():
                    self._write(image, stage, label)
                image.crf_inputs.update(unaries)

    def _crf_pass(self, image: ImageState, refined: Dict[str, np.ndarray]) -> None:
        for stage, label in crf_stage_labels(refined, image.class_ids,
                                             self.ignore_index).items():
            self._write(image, stage, label)

    def _evaluate(self, image: ImageState) -> None:
        if self.evaluator is None or image.gt is None:
            return
        preds = {s: read_png(image.paths[s]) for s in EVALUATED_STAGES if s in image.paths}
        if preds:
            self.evaluator.process(data_samples=[dict(gt=image.gt, preds=preds)])

    def _write(self, image: ImageState, stage: str, label: Union[Tensor, np.ndarray]) -> None:
        self.store.write_label(image.paths[stage], label)

    def _cams(self, cam_model, img_norm: Tensor, labels: Tensor, cache: str,
              scaled_input: Optional[Callable] = None) -> Tuple[Tensor, Tensor]:
        """Multi-scale CAMs ``(K, H, W)`` and classes ``(K,)``, from the cache if valid.

        CAMs are rounded to float16 whether cached or not, so that a resumed run produces the
        same labels as an uninterrupted one.
        """
        wanted = torch.nonzero(labels > 0)[:, 0]
        cached = self.store.load_cams(cache, wanted, tuple(img_norm.shape[-2:]))
        if cached is not None:
            return cached[0].float().to(img_norm.device), cached[1].to(img_norm.device)
        if self._prepared_cam is None or self._prepared_cam.model is not cam_model:
            self._prepared_cam = PreparedCAM(cam_model, self.cam_inference)
        cams, class_ids = compute_cams(self._prepared_cam, img_norm, labels, checkpoint_hint=str(
            self.cam_checkpoint), scaled_input=scaled_input, **self.cam_kwargs)
        if self.save_cams:
            self.store.save_cams(cache, cams, class_ids)
        return cams.float(), class_ids

    def _report(self, metrics: dict, num_images: int) -> None:
        print_log(f'pseudo labels in {self.out_dir}: stages {", ".join(self.stages)}; rank 0 '
                  f'made {len(self.processed)}, found {len(self.skipped)} complete '
                  f'(of {num_images} images, all ranks)', logger='current')
        where = self.store.write_failures(self.failures)
        if self.failures:
            print_log(f'{len(self.failures)} image(s) failed ({where}):\n' + '\n'.join(
                f'{path}\t{reason}' for path, reason in self.failures), logger='current',
                level=logging.WARNING)
        if metrics:
            metrics = {k.split('/', 1)[-1]: v for k, v in metrics.items()}  # drop the prefix
            self.store.write_metrics(table1_report(metrics), metrics)
