# Copyright (c) mmaffseg contributors. All rights reserved.
"""The PSA pseudo-label runner, an mmengine loop: CAM -> affinity labels | random walk -> dCRF.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

:class:`PseudoLabelLoop` is a test loop (``test_cfg = dict(type='PseudoLabelLoop', ...)``) that
``tools/make_pseudo_labels.py`` runs. The runner's ``model`` is the CAM classifier; the loop
builds the AffinityNet from ``aff_model``. For every image of ``test_dataloader.dataset`` it
writes, under ``out_dir``, the label maps of the requested ``stages`` (``cam``,
``affinity_labels``, ``rw``, ``rw_crf``; what each holds:
:mod:`mmaffseg.wsss.pseudo_label_stages`) and caches the CAMs; the folders and file names, in
mmseg's seg-map layout, are :mod:`mmaffseg.wsss.label_store`'s. The code is in four parts:
this loop (sharding, hooks, failures, progress, report), the step of one image through the
networks (:class:`~mmaffseg.wsss.image_step.ImageStep`, shared with the parameter selection),
the stages of one image on tensors (:func:`~mmaffseg.wsss.pseudo_label_stages.stage_labels`)
and the files (:class:`~mmaffseg.wsss.label_store.PseudoLabelStore`).

Behaviour:

* **Resumable.** Every file is written atomically (:mod:`mmaffseg.utils.atomic_io`), so an
  output that exists is complete; a re-run skips the images whose outputs all exist and redoes
  only the missing ones (cached CAMs are reused).
* **Recorded and checked.** Before any image, ``out_dir`` is locked (a second run into it stops
  at once) and its provenance record is checked
  (:mod:`~mmaffseg.wsss.pseudo_label_provenance`: each stage's checkpoints by content, settings,
  data): the stages made from the same inputs are reused, a stage made from other inputs stops
  the run with :class:`~mmaffseg.utils.provenance.ProvenanceError` (or, with ``overwrite``, its
  files are removed and recomputed); so does an image (or mask) whose contents changed since
  its outputs were made. The report is removed and rewritten from the outputs.
* **Sharded.** With ``--launcher pytorch`` each of the ``world_size`` processes takes the images
  ``rank, rank + world_size, ...`` (:func:`shard_indices`); the metric gathers the results.
* **Fault tolerant.** An unreadable image, an image without image-level labels, CAMs,
  affinities or walked scores with NaN/inf values (e.g. from a checkpoint with non-finite
  weights) or any other per-image error is logged and listed at the end (and in
  ``out_dir/failures.txt``); the run goes on and :attr:`PseudoLabelLoop.failures` is non-empty
  (the tool then exits with code 1). An unreadable CAM cache (truncated, corrupt) is logged
  and recomputed.
* **Checked output folder.** Before any image, ``out_dir`` must be writable and have at least
  :data:`MIN_FREE_BYTES` free (the free space is logged); a write that fails because the
  folder is read-only or the disk is full stops the run with :class:`OutputFolderError`
  (finished outputs stay valid, a re-run resumes) instead of failing every following image.
* **Evaluated.** Images whose dataset sample carries a ground truth (``gt_sem_seg``) are scored
  by the evaluator (:class:`~mmaffseg.evaluation.PseudoLabelMetric`: PSA's Table 1), including
  images skipped on resume (their PNGs are read back).
* **Overlapped.** The images run in chunks of ``chunk_size``: the dense CRFs of a chunk run
  together in ``crf.workers`` processes (``'auto'``: the rank's cores,
  :func:`~mmaffseg.wsss.crf_pool.crf_workers_per_rank`) while the network passes of the next
  chunk run (``overlap_crf``; :func:`~mmaffseg.wsss.crf_pool.run_chunks`).

The work on a chunk of images (network passes, CRFs, writing, evaluation, per-image failures)
is :class:`~mmaffseg.wsss.pseudo_label_chunks.ChunkWork`'s.
"""
import logging
import os.path as osp
from contextlib import contextmanager
from functools import partial
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper, revert_sync_batchnorm
from mmengine.runner import BaseLoop
from mmengine.utils import ProgressBar
from mmseg.registry import LOOPS, MODELS

from mmaffseg.ops.psa_defaults import PSA_DEFAULTS
from mmaffseg.ops.psa_stages import EVALUATED_STAGES, WALK_STAGES
from mmaffseg.postprocessing.dense_crf import DenseCRF
from mmaffseg.utils.checkpoint import load_local_weights
from mmaffseg.utils.folder_claim import FolderClaim, claim_folder, claim_folder_for_all_ranks
from mmaffseg.utils.provenance import Provenance

from .cam_inference import PreparedCAM, model_device, resolve_cam_inference
from .crf_pool import crf_args_for_rank, resolve_chunk_size, resolve_overlap, run_chunks
from .image_step import ImageStep
from .label_store import (  # noqa: F401 (label_relpath, leaf_dataset re-exported)
    OutputFolderError,
    PseudoLabelStore,
    label_relpath,
    leaf_dataset,
    read_png,
)
from .pseudo_label_chunks import ChunkWork
from .pseudo_label_provenance import check_image_record, pseudo_label_provenance


def shard_indices(num_items: int, rank: int, world_size: int) -> List[int]:
    """The items of process ``rank`` of ``world_size``: ``rank, rank + world_size, ...``.

    Every item belongs to exactly one process; shard sizes differ by at most one.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f'need 0 <= rank < world_size, got rank={rank}, '
                         f'world_size={world_size}')
    return list(range(rank, num_items, world_size))


@LOOPS.register_module()
class PseudoLabelLoop(ChunkWork, BaseLoop):
    """Make PSA pseudo labels (and affinity labels) for every image of a dataset.

    The defaults of ``cam_scales`` ... ``rw_logt`` and the CRF settings are PSA's,
    :data:`~mmaffseg.ops.psa_defaults.PSA_DEFAULTS` (shared with :func:`stage_labels`).

    Args:
        runner (Runner): The runner; its ``model`` is the CAM classifier (e.g.
            :class:`~mmaffseg.models.segmentors.CAMClassifier`, anything with ``forward_cam``).
        dataloader (DataLoader | dict): Its dataset is read image by image (the loop shards it
            itself). The pipeline must load the image without resizing, add
            ``gt_class_labels`` (:class:`~mmaffseg.datasets.LoadImageLevelLabels`) and pack it
            as metainfo; with ``LoadAnnotations`` the labels are evaluated.
        evaluator (Evaluator | dict | list, optional): Typically
            ``dict(type='PseudoLabelMetric')``. Default: None (no evaluation).
        out_dir (str, optional): Output root. Default: ``<work_dir>/pseudo_labels``.
        stages (Sequence[str]): Outputs to make, from
            :data:`~mmaffseg.ops.psa_stages.PSA_STAGES` (``cam``, ``affinity_labels``, ``rw``,
            ``rw_crf``). Default: the evaluated stages (``cam``, ``rw``, ``rw_crf``);
            ``('cam', 'affinity_labels')`` makes the AffinityNet training labels (no
            AffinityNet needed).
        cam_checkpoint (str): Checkpoint of the CAM classifier.
        aff_checkpoint (str, optional): Checkpoint of the AffinityNet (``rw``/``rw_crf``).
        aff_model (dict | str, optional): AffinityNet model config, or the path of a config
            whose ``model`` it is (``rw``/``rw_crf``).
        cam_scales (Sequence[float]): CAM inference scales.
        cam_flip (bool): Add flipped images to the CAM inference.
        cam_inference (dict, optional): How the CAM network runs (``amp``,
            ``channels_last``, ``fold_bn``; :mod:`~mmaffseg.wsss.cam_inference`). Default:
            None (float32, BatchNorms folded, channels-last on CUDA).
        cam_bg_score (float): Constant background score of the ``cam`` labels.
        low_alpha (float): Background power of the weak-background affinity-label map.
        high_alpha (float): Background power of the strong-background map.
        rw_alpha (float): Background power of the walked CAM stack.
        rw_beta (float): Affinity power of the walk.
        rw_logt (int): log2 of the number of walk steps.
        crf (dict): :class:`~mmaffseg.postprocessing.DenseCRF` arguments over PSA's
            (``workers`` > 1 runs the CRFs of a chunk in parallel; ``'auto'``: the cores of
            this rank, less one when the networks run on a GPU). Default: {}.
        chunk_size (int, optional): Images whose CRFs are submitted together. Default: None
            (:func:`~mmaffseg.wsss.crf_pool.default_chunk_size`: one per CRF worker, at
            least 4).
        overlap_crf (bool | str): Collect the CRFs of a chunk after the network passes of
            the next (same outputs); ``'auto'``: when the CAM network runs on a GPU (on a
            CPU both would share the cores). Default: 'auto'.
        save_cams (bool): Cache the CAMs in ``out_dir/cams`` (reused on resume and by later
            stages). Default: True.
        num_threads (int, optional): ``torch.set_num_threads`` while making the labels (one
            per process is best when several processes share a CPU; set
            ``OMP_WAIT_POLICY=PASSIVE`` on a busy machine). Default: None (unchanged).
        ignore_index (int): Label of unknown affinity-label pixels. Default: 255.
        overwrite (bool): Recompute the stages of ``out_dir`` made from other inputs (their
            files are removed first) instead of stopping. Default: False.
        allow_nonfinite_weights (bool): Use checkpoints with NaN/inf weights (each image then
            fails on its non-finite scores) instead of stopping before any image with an
            error naming the file and the first such tensor. Default: False.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 evaluator: Union[Evaluator, dict, list, None] = None,
                 out_dir: Optional[str] = None,
                 stages: Sequence[str] = EVALUATED_STAGES,
                 cam_checkpoint: Optional[str] = None,
                 aff_checkpoint: Optional[str] = None,
                 aff_model: Union[dict, str, None] = None,
                 cam_scales: Sequence[float] = PSA_DEFAULTS.cam_scales,
                 cam_flip: bool = PSA_DEFAULTS.cam_flip,
                 cam_inference: Optional[dict] = None,
                 cam_bg_score: float = PSA_DEFAULTS.cam_bg_score,
                 low_alpha: float = PSA_DEFAULTS.low_alpha,
                 high_alpha: float = PSA_DEFAULTS.high_alpha,
                 rw_alpha: float = PSA_DEFAULTS.rw_alpha,
                 rw_beta: float = PSA_DEFAULTS.rw_beta,
                 rw_logt: int = PSA_DEFAULTS.rw_logt,
                 crf: Optional[dict] = None,
                 chunk_size: Optional[int] = None,
                 overlap_crf: Union[bool, str] = 'auto',
                 save_cams: bool = True,
                 num_threads: Optional[int] = None,
                 ignore_index: int = 255,
                 overwrite: bool = False,
                 allow_nonfinite_weights: bool = False) -> None:
        super().__init__(runner, dataloader)
        self.store = PseudoLabelStore(out_dir or osp.join(runner.work_dir, 'pseudo_labels'),
                                      stages)
        self.stages = self.store.stages  # pipeline order
        self.needs_affinity_net = bool(set(WALK_STAGES) & set(self.stages))
        if not cam_checkpoint or not osp.isfile(cam_checkpoint):
            raise FileNotFoundError(
                f'the CAM classifier checkpoint {cam_checkpoint!r} does not exist; pass '
                '--cam-checkpoint (test_cfg.cam_checkpoint) with a trained CAM model')
        if self.needs_affinity_net:
            if not aff_checkpoint or not osp.isfile(aff_checkpoint):
                raise FileNotFoundError(
                    f'stages {self.stages} need the AffinityNet, but its checkpoint '
                    f'{aff_checkpoint!r} does not exist; pass --aff-checkpoint '
                    '(test_cfg.aff_checkpoint), or make only affinity labels (--affinity-labels)')
            if aff_model is None:
                raise ValueError(f'stages {" / ".join(WALK_STAGES)} need test_cfg.aff_model: the '
                                 'AffinityNet model config (a dict, or the path of its training '
                                 'config)')
        self.cam_checkpoint = cam_checkpoint
        self.aff_checkpoint = aff_checkpoint
        self.aff_model_cfg = aff_model
        self.cam_kwargs = dict(scales=tuple(cam_scales), flip=cam_flip)
        #: The settings of the stages (:func:`stage_labels` arguments), the loop's one copy.
        self.stage_settings = dict(cam_bg_score=cam_bg_score, low_alpha=low_alpha,
                                   high_alpha=high_alpha, rw_alpha=rw_alpha, rw_beta=rw_beta,
                                   rw_logt=rw_logt)
        device = model_device(runner.model)
        self.cam_inference = resolve_cam_inference(cam_inference, device)
        self._prepared_cam: Optional[PreparedCAM] = None
        # PSA's CRF, updated by the config's crf, its pool sized for this rank
        self.crf = DenseCRF(**crf_args_for_rank(dict(crf or {}), device))
        self.chunk_size = resolve_chunk_size(chunk_size, self.crf.workers)
        self.overlap_crf = resolve_overlap(overlap_crf, device)
        self.save_cams = save_cams
        self.num_threads = num_threads
        self.ignore_index = ignore_index
        self.overwrite = overwrite
        self.allow_nonfinite_weights = allow_nonfinite_weights
        if isinstance(evaluator, (dict, list)):
            evaluator = runner.build_evaluator(evaluator)
        self.evaluator = evaluator
        if self.evaluator is not None and hasattr(self.dataloader.dataset, 'metainfo'):
            self.evaluator.dataset_meta = self.dataloader.dataset.metainfo
        self.failures: List[Tuple[str, str]] = []  # (image, reason), all ranks after run()
        self.processed: List[int] = []  # dataset indices computed by this rank
        self.skipped: List[int] = []  # dataset indices already complete (resume)

    @property
    def out_dir(self) -> str:
        """The output root (the store's)."""
        return self.store.out_dir

    @out_dir.setter
    def out_dir(self, value: str) -> None:
        self.store.out_dir = value

    # ----------------------------------------------------------------------------- models
    def _load(self, model: torch.nn.Module, path: str, what: str) -> None:
        load_local_weights(model, path, what, allow_nonfinite=self.allow_nonfinite_weights,
                           nonfinite_opt_out='--allow-nonfinite-weights '
                           '(test_cfg.allow_nonfinite_weights=True)')

    def _cam_model(self) -> torch.nn.Module:
        model = self.runner.model
        model = model.module if is_model_wrapper(model) else model
        if not hasattr(model, 'forward_cam'):
            raise TypeError(f'the runner model {type(model).__name__} has no forward_cam: the '
                            'pseudo-label config\'s model must be the CAM classifier')
        self._load(model, self.cam_checkpoint, 'CAM checkpoint (--cam-checkpoint)')
        return model.eval()

    def _aff_model(self) -> dict:
        """The AffinityNet's model config (``aff_model``, or the ``model`` of its file)."""
        cfg = self.aff_model_cfg
        return Config.fromfile(cfg).model if isinstance(cfg, str) else cfg

    def _affinity_net(self, device: torch.device) -> torch.nn.Module:
        model = revert_sync_batchnorm(MODELS.build(self._aff_model()))
        if not hasattr(model, 'predict_affinity'):
            raise TypeError(f'aff_model builds a {type(model).__name__}, which has no '
                            'predict_affinity; use an AffinityNet')
        self._load(model, self.aff_checkpoint, 'AffinityNet checkpoint (--aff-checkpoint)')
        return model.to(device).eval()

    # ------------------------------------------------------------------------------ paths
    def _paths(self, dataset, index: int) -> Tuple[str, str, Dict[str, str]]:
        return self.store.paths(dataset, index)

    # --------------------------------------------------------------------------- the run
    def run(self) -> dict:
        """Make the outputs of this rank's images, then evaluate and report.

        The frame of both PSA loops: the hooks, the output folder checked
        (:meth:`_check_outputs`) and claimed, then :meth:`_work` on the dataset.
        """
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        free = self._check_outputs()
        dataset = self.dataloader.dataset
        dataset.full_init()
        with self._claim_out_dir(dataset):
            metrics = self._work(dataset, free)
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    def _check_outputs(self) -> int:
        """Check the outputs can be written before any work; return the free bytes."""
        return self.store.check()

    def _work(self, dataset, free: int) -> dict:
        """The work on the claimed ``out_dir``; returns the metrics."""
        print_log(f'pseudo labels: writing to {self.out_dir} ({free / 2**30:.1f} GiB free)',
                  logger='current')
        return self._make_labels(dataset)

    @contextmanager
    def _inference(self, with_affinity_net: bool) -> Iterator[tuple]:
        """``(cam_model, aff_model)`` loaded for inference (``aff_model`` None without
        ``with_affinity_net``), with ``num_threads`` torch threads and autograd off."""
        cam_model = self._cam_model()
        device = next(cam_model.parameters()).device
        aff_model = self._affinity_net(device) if with_affinity_net else None
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(self.num_threads or threads)
            with torch.no_grad():
                yield cam_model, aff_model
        finally:
            torch.set_num_threads(threads)

    def _step(self, cam_model, aff_model) -> ImageStep:
        """The per-image step of these models with this loop's CAMs and settings."""
        return ImageStep(cam_model, aff_model, partial(self._cams, cam_model),
                         self.cam_kwargs['scales'], self.stage_settings, self.aff_checkpoint)

    def _make_labels(self, dataset) -> dict:
        """Make this rank's outputs, evaluate and report; return the metrics."""
        rank, world_size = get_dist_info()
        indices = shard_indices(len(dataset), rank, world_size)
        self.failures, self.processed, self.skipped = [], [], []
        if rank == 0:
            print_log(f'pseudo labels: chunks of {self.chunk_size} images, dense CRFs in '
                      f'{max(1, self.crf.workers)} process(es)'
                      + (', overlapped with the next chunk' if self.overlap_crf else ''),
                      logger='current')
        bar = ProgressBar(len(indices)) if rank == 0 and indices else None
        with self._inference(self.needs_affinity_net) as (cam_model, aff_model):
            run_chunks([indices[s:s + self.chunk_size]
                        for s in range(0, len(indices), self.chunk_size)],
                       lambda chunk: self._model_passes(dataset, chunk, cam_model, aff_model,
                                                        bar),
                       self._submit_crfs,
                       lambda images, pending: self._crf_passes(images, pending, bar),
                       self.overlap_crf)
        self.failures = sorted(f for part in all_gather_object(self.failures) for f in part)
        metrics = {}
        if self.evaluator is not None:
            seen_gt = any(all_gather_object(any(m.results for m in self.evaluator.metrics)))
            if seen_gt:
                metrics = self.evaluator.evaluate(len(dataset))
        if rank == 0:
            self._report(metrics, len(dataset))
        return metrics

    # ------------------------------------------------------------------------- provenance
    def _claim_out_dir(self, dataset) -> FolderClaim:
        """Lock ``out_dir``, check its record against this run's inputs, clear what
        ``overwrite`` recomputes and write the record, before any image (rank 0 for all)."""

        def claim_and_check_images() -> FolderClaim:
            claimed = claim_folder(self._provenance(dataset), self._stage_outputs(),
                                   self.overwrite, self._regenerated_files())
            try:  # an image rewritten under its name would be skipped as done
                check_image_record(self.out_dir, [self.store.image_files(dataset, index)
                                                  for index in range(len(dataset))],
                                   self.overwrite)
            except BaseException:
                claimed.release()
                raise
            return claimed

        claim = claim_folder_for_all_ranks(claim_and_check_images)
        if claim.cleared:
            print_log(f'pseudo labels: overwrite: removed the stages {", ".join(claim.cleared)} '
                      f'of {self.out_dir}, made from other inputs; recomputing them',
                      logger='current', level=logging.WARNING)
        return claim

    def _provenance(self, dataset, stages: Optional[Sequence[str]] = None) -> Provenance:
        """The record of ``out_dir`` with the CAM cache and ``stages`` (default: this run's
        stages and report) declared."""
        cfg = self.runner.cfg
        cam_model = cfg.get('model') or dict(type=type(self.runner.model).__name__)
        settings = dict(self.stage_settings, cam_scales=list(self.cam_kwargs['scales']),
                        cam_flip=self.cam_kwargs['flip'], ignore_index=self.ignore_index,
                        cam_precision=self.cam_inference.precision)
        images = None if stages is not None else [
            self._paths(dataset, index)[0] for index in range(len(dataset))]
        return pseudo_label_provenance(
            self.out_dir, self.stages if stages is None else stages, settings,
            self.cam_checkpoint, cam_model, (cfg.get('test_dataloader') or {}).get('dataset'),
            self.crf, self.aff_checkpoint,
            self._aff_model() if self.needs_affinity_net else None, images, type(self).__name__)

    def _stage_outputs(self) -> Dict[str, List[str]]:
        return {stage: [folder] for stage, folder in self.store.stage_folders().items()}

    def _regenerated_files(self) -> List[str]:
        """Files every run rewrites from the outputs: removed before the work."""
        return self.store.report_files()
