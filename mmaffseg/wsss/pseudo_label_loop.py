# Copyright (c) mmaffseg contributors. All rights reserved.
"""The PSA pseudo-label runner, an mmengine loop: CAM -> affinity labels | random walk -> dCRF.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

:class:`PseudoLabelLoop` is a test loop (``test_cfg = dict(type='PseudoLabelLoop', ...)``) that
``tools/make_pseudo_labels.py`` runs. The runner's ``model`` is the CAM classifier; the loop
builds the AffinityNet from ``aff_model``. For every image of ``test_dataloader.dataset`` it
writes, under ``out_dir``, the outputs of the requested ``stages``:

===================  ============================  ==============================================
stage                folder                        content (uint8 PNG, mmseg seg-map layout)
===================  ============================  ==============================================
(CAM cache)          ``cams/<...>.npz``            multi-scale CAMs (float16) and their classes
``cam``              ``cam/<label path>``          argmax of ``[bg_score, CAMs]`` (Table 1 "CAM")
``affinity_labels``  ``affinity_labels/<...>``     AffinityNet training labels: 0 confident
                                                   background, k+1 class k, 255 unknown
``rw``               ``rw/<label path>``           random-walk pseudo labels ("CAM + RW")
``rw_crf``           ``rw_crf/<label path>``       walk + dense CRF ("CAM + RW + dCRF")
===================  ============================  ==============================================

``<label path>`` is the image's path relative to ``data_prefix.img_path`` with ``img_suffix``
replaced by ``seg_map_suffix``: the folder can be used as ``data_prefix.seg_map_path`` of a
second-stage mmseg config for the same images. Labels are 0 background and ``k + 1`` for
image-level class ``k``: the dataset's segmentation classes when its class 0 is background.

Behaviour:

* **Resumable.** Every file is written atomically (:mod:`mmaffseg.utils.atomic_io`), so an
  output that exists is complete; a re-run skips the images whose outputs all exist and redoes
  only the missing ones (cached CAMs are reused). Outputs are matched by name only: use a new
  ``out_dir`` after changing a model or a setting.
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
* The dense CRFs of ``chunk_size`` images are run together, over ``crf.workers`` processes.
"""
import errno
import io
import json
import logging
import math
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import ConcatDataset
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper, revert_sync_batchnorm
from mmengine.runner import BaseLoop
from mmengine.utils import ProgressBar
from mmseg.registry import LOOPS, MODELS
from torch import Tensor

from mmaffseg.evaluation.pseudo_label_metric import format_table1
from mmaffseg.postprocessing.dense_crf import DenseCRF
from mmaffseg.utils.atomic_io import atomic_write_bytes, probe_writable, remove_stale_temp_files
from mmaffseg.utils.safe_load import CheckpointError, load_checkpoint_file

from .affinity_labels import affinity_label_from_crf
from .cam import add_background, multi_scale_cam, stack_to_label
from .random_walk import random_walk_cams

#: Stage -> output folder.
STAGE_DIRS = dict(cam='cam', affinity_labels='affinity_labels', rw='rw', rw_crf='rw_crf')
CAM_CACHE_DIR = 'cams'
#: Stages whose labels are scored against the ground truth.
EVALUATED_STAGES = ('cam', 'rw', 'rw_crf')
#: The run does not start with less free space than this in ``out_dir``.
MIN_FREE_BYTES = 64 * 2**20
#: Write errors that no other image can escape: stop the run.
_FATAL_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


class OutputFolderError(OSError):
    """The output folder cannot take the outputs (read-only, missing rights, disk full)."""


def check_output_dir(out_dir: str, min_free_bytes: int = MIN_FREE_BYTES) -> int:
    """Create ``out_dir`` if needed, check that a file can be written there and measure the
    free space.

    Args:
        out_dir (str): The output folder.
        min_free_bytes (int): Least free space accepted. Default: :data:`MIN_FREE_BYTES`.

    Returns:
        int: Free bytes on the folder's file system.

    Raises:
        OutputFolderError: The folder cannot be created or written, or has too little space.
    """
    try:
        probe_writable(out_dir)
    except OSError as e:
        raise OutputFolderError(
            e.errno, f'the output folder {out_dir} is not writable ({type(e).__name__}: '
            f'{e.strerror or e}); choose another --out (test_cfg.out_dir) or fix the folder\'s '
            'permissions') from e
    free = shutil.disk_usage(out_dir).free
    if free < min_free_bytes:
        raise OutputFolderError(
            errno.ENOSPC, f'the output folder {out_dir} has {free / 2**20:.1f} MiB free, less '
            f'than the {min_free_bytes / 2**20:.0f} MiB needed; free some space or choose '
            'another --out (test_cfg.out_dir)')
    return free


def check_finite(x: Tensor, what: str, hint: str) -> None:
    """Raise a ValueError naming ``what`` when ``x`` holds NaN or inf values."""
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = x.numel() - int(finite.sum())
        raise ValueError(f'{what} contain {bad} NaN/inf value(s) of {x.numel()}; {hint}')


def shard_indices(num_items: int, rank: int, world_size: int) -> List[int]:
    """The items of process ``rank`` of ``world_size``: ``rank, rank + world_size, ...``.

    Every item belongs to exactly one process; shard sizes differ by at most one.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f'need 0 <= rank < world_size, got rank={rank}, '
                         f'world_size={world_size}')
    return list(range(rank, num_items, world_size))


def label_relpath(img_path: str, img_prefix: Optional[str], img_suffix: str = '',
                  seg_map_suffix: str = '.png') -> str:
    """Path of an image's label maps relative to a label folder, in mmseg's seg-map layout.

    Args:
        img_path (str): The image file.
        img_prefix (str, optional): The dataset's ``data_prefix['img_path']`` (joined with the
            data root); paths are kept relative to it. None or outside: the file name only.
        img_suffix (str): The dataset's image suffix (replaced). Default: '' (the extension).
        seg_map_suffix (str): The dataset's label suffix. Default: '.png'.

    Returns:
        str: e.g. ``2007_000032.png`` or ``city/city_000000_000019_gtFine_labelTrainIds.png``.
    """
    rel = osp.basename(img_path)
    if img_prefix:
        candidate = osp.relpath(img_path, img_prefix)
        if not candidate.startswith(os.pardir):
            rel = candidate
    if img_suffix and rel.endswith(img_suffix):
        rel = rel[:-len(img_suffix)]
    else:
        rel = osp.splitext(rel)[0]
    return rel + seg_map_suffix


def leaf_dataset(dataset, index: int) -> tuple:
    """The dataset that holds item ``index`` of a (possibly concatenated) dataset, and the
    item's index there."""
    while isinstance(dataset, ConcatDataset):
        which, index = dataset._get_ori_dataset_idx(index)
        dataset = dataset.datasets[which]
    return dataset, index


def encode_png(label: np.ndarray) -> bytes:
    """Encode a ``(H, W)`` label map as a single-channel uint8 PNG."""
    if label.ndim != 2 or label.min() < 0 or label.max() > 255:
        raise ValueError(f'a label PNG needs a (H, W) map with values in 0..255, got shape '
                         f'{label.shape}, range {label.min()}..{label.max()}')
    ok, buf = cv2.imencode('.png', np.ascontiguousarray(label, dtype=np.uint8))
    if not ok:
        raise OSError('cv2 could not encode the label PNG')
    return buf.tobytes()


def read_png(path: str) -> np.ndarray:
    """Read a label PNG written by :func:`encode_png`."""
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None or label.ndim != 2:
        raise ValueError(f'{path} is not a single-channel label PNG')
    return label


def load_model_weights(model: torch.nn.Module, path: str, what: str) -> None:
    """Load a local checkpoint (``state_dict`` or a bare state dict) safely and strictly.

    A checkpoint that holds no state dict or does not fit ``model`` raises a
    :class:`CheckpointError` (the tool names the argument and exits 2).

    Args:
        model (nn.Module): The model.
        path (str): The checkpoint file (mmengine's, or converted official weights).
        what (str): Which checkpoint this is, for the messages (e.g. ``'--cam-checkpoint'``).
    """
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'{what}: checkpoint file {path!r} does not exist')
    ckpt = load_checkpoint_file(path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(path, f'({what}) holds no state dict')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing or unexpected:
        raise CheckpointError(
            path, f'({what}) does not fit the {type(model).__name__} of the config: missing '
            f'keys {missing[:5]}{"..." if len(missing) > 5 else ""}, unexpected keys '
            f'{unexpected[:5]}{"..." if len(unexpected) > 5 else ""}; check the checkpoint '
            'against the config (convert official weights with tools/model_converters/)')


class _ConfigError(RuntimeError):
    """A mistake in the config that would fail every image: stop the run."""


def _write_output(path: str, data: bytes) -> None:
    """Write an output atomically; a read-only folder or a full disk stops the run."""
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        if e.errno in _FATAL_WRITE_ERRNOS:
            raise OutputFolderError(
                e.errno, f'cannot write {path} ({e.strerror or e}): the output folder is '
                'read-only or full; no later image could be written either, so the run stops '
                '(the outputs written so far are complete: re-run to resume)') from e
        raise


class _Image:
    """The state of one image between the model pass and the CRF pass of a chunk."""

    def __init__(self, index: int, img_path: str, paths: Dict[str, str]) -> None:
        self.index = index
        self.img_path = img_path
        self.paths = paths  # stage -> output file
        self.todo: List[str] = [s for s, p in paths.items() if not osp.isfile(p)]
        self.gt: Optional[np.ndarray] = None
        self.img_rgb: Optional[np.ndarray] = None
        self.class_ids: Optional[Tensor] = None
        self.crf_inputs: Dict[str, np.ndarray] = {}  # name -> (C, H, W) probabilities


@LOOPS.register_module()
class PseudoLabelLoop(BaseLoop):
    """Make PSA pseudo labels (and affinity labels) for every image of a dataset.

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
        stages (Sequence[str]): Outputs to make, from ``cam``, ``affinity_labels``, ``rw``,
            ``rw_crf``. Default: ('cam', 'rw', 'rw_crf'); ('cam', 'affinity_labels') makes
            the AffinityNet training labels (no AffinityNet needed).
        cam_checkpoint (str): Checkpoint of the CAM classifier.
        aff_checkpoint (str, optional): Checkpoint of the AffinityNet (``rw``/``rw_crf``).
        aff_model (dict | str, optional): AffinityNet model config, or the path of a config
            whose ``model`` it is (``rw``/``rw_crf``).
        cam_scales (Sequence[float]): CAM inference scales. Default: (1.0, 0.5, 1.5, 2.0).
        cam_flip (bool): Add flipped images to the CAM inference. Default: True.
        cam_bg_score (float): Constant background score of the ``cam`` labels. Default: 0.2.
        low_alpha (float): Background power of the weak-background affinity-label map.
            Default: 4.
        high_alpha (float): Background power of the strong-background map. Default: 32.
        rw_alpha (float): Background power of the walked CAM stack. Default: 16.
        rw_beta (float): Affinity power of the walk. Default: 8.
        rw_logt (int): log2 of the number of walk steps. Default: 8.
        crf (dict): :class:`~mmaffseg.postprocessing.DenseCRF` arguments (PSA defaults when
            empty; ``workers`` > 1 runs the CRFs of a chunk in parallel). Default: {}.
        chunk_size (int, optional): Images whose CRFs run together. Default: ``crf.workers``
            (at least 1).
        save_cams (bool): Cache the CAMs in ``out_dir/cams`` (reused on resume and by later
            stages). Default: True.
        num_threads (int, optional): ``torch.set_num_threads`` while making the labels (one
            per process is best when several processes share a CPU; set
            ``OMP_WAIT_POLICY=PASSIVE`` on a busy machine). Default: None (unchanged).
        ignore_index (int): Label of unknown affinity-label pixels. Default: 255.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 evaluator: Union[Evaluator, dict, list, None] = None,
                 out_dir: Optional[str] = None,
                 stages: Sequence[str] = ('cam', 'rw', 'rw_crf'),
                 cam_checkpoint: Optional[str] = None,
                 aff_checkpoint: Optional[str] = None,
                 aff_model: Union[dict, str, None] = None,
                 cam_scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
                 cam_flip: bool = True,
                 cam_bg_score: float = 0.2,
                 low_alpha: float = 4,
                 high_alpha: float = 32,
                 rw_alpha: float = 16,
                 rw_beta: float = 8,
                 rw_logt: int = 8,
                 crf: Optional[dict] = None,
                 chunk_size: Optional[int] = None,
                 save_cams: bool = True,
                 num_threads: Optional[int] = None,
                 ignore_index: int = 255) -> None:
        super().__init__(runner, dataloader)
        unknown = [s for s in stages if s not in STAGE_DIRS]
        if unknown or not stages:
            raise ValueError(f'stages must be a non-empty subset of {tuple(STAGE_DIRS)}, got '
                             f'{tuple(stages)}')
        self.stages = tuple(s for s in STAGE_DIRS if s in stages)  # pipeline order
        self.needs_affinity_net = bool({'rw', 'rw_crf'} & set(self.stages))
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
                raise ValueError('stages rw / rw_crf need test_cfg.aff_model: the AffinityNet '
                                 'model config (a dict, or the path of its training config)')
        self.out_dir = out_dir or osp.join(runner.work_dir, 'pseudo_labels')
        self.cam_checkpoint = cam_checkpoint
        self.aff_checkpoint = aff_checkpoint
        self.aff_model_cfg = aff_model
        self.cam_kwargs = dict(scales=tuple(cam_scales), flip=cam_flip)
        self.cam_bg_score = cam_bg_score
        self.low_alpha, self.high_alpha = low_alpha, high_alpha
        self.rw_kwargs = dict(alpha=rw_alpha, beta=rw_beta, logt=rw_logt)
        self.crf = DenseCRF(**(crf or {}))
        self.chunk_size = chunk_size or max(1, self.crf.workers)
        self.save_cams = save_cams
        self.num_threads = num_threads
        self.ignore_index = ignore_index
        if isinstance(evaluator, (dict, list)):
            evaluator = runner.build_evaluator(evaluator)
        self.evaluator = evaluator
        if self.evaluator is not None and hasattr(self.dataloader.dataset, 'metainfo'):
            self.evaluator.dataset_meta = self.dataloader.dataset.metainfo
        self.failures: List[Tuple[str, str]] = []  # (image, reason), all ranks after run()
        self.processed: List[int] = []  # dataset indices computed by this rank
        self.skipped: List[int] = []  # dataset indices already complete (resume)

    # ----------------------------------------------------------------------------- models
    def _cam_model(self) -> torch.nn.Module:
        model = self.runner.model
        model = model.module if is_model_wrapper(model) else model
        if not hasattr(model, 'forward_cam'):
            raise TypeError(f'the runner model {type(model).__name__} has no forward_cam: the '
                            'pseudo-label config\'s model must be the CAM classifier')
        load_model_weights(model, self.cam_checkpoint, 'CAM checkpoint (--cam-checkpoint)')
        return model.eval()

    def _affinity_net(self, device: torch.device) -> torch.nn.Module:
        cfg = self.aff_model_cfg
        if isinstance(cfg, str):
            cfg = Config.fromfile(cfg).model
        model = revert_sync_batchnorm(MODELS.build(cfg))
        if not hasattr(model, 'predict_affinity'):
            raise TypeError(f'aff_model builds a {type(model).__name__}, which has no '
                            'predict_affinity; use an AffinityNet')
        load_model_weights(model, self.aff_checkpoint, 'AffinityNet checkpoint '
                           '(--aff-checkpoint)')
        return model.to(device).eval()

    # ------------------------------------------------------------------------------ paths
    def _paths(self, dataset, index: int) -> Tuple[str, str, Dict[str, str]]:
        dataset, index = leaf_dataset(dataset, index)
        info = dataset.get_data_info(index)
        prefix = getattr(dataset, 'data_prefix', {}).get('img_path')
        rel = label_relpath(info['img_path'], prefix, getattr(dataset, 'img_suffix', ''),
                            getattr(dataset, 'seg_map_suffix', '.png'))
        paths = {s: osp.join(self.out_dir, STAGE_DIRS[s], rel) for s in self.stages}
        cache = osp.join(self.out_dir, CAM_CACHE_DIR, osp.splitext(rel)[0] + '.npz')
        return info['img_path'], cache, paths

    # --------------------------------------------------------------------------- the run
    def run(self) -> dict:
        """Make the outputs of this rank's images, then evaluate and report."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        free = check_output_dir(self.out_dir)
        print_log(f'pseudo labels: writing to {self.out_dir} ({free / 2**30:.1f} GiB free)',
                  logger='current')
        cam_model = self._cam_model()
        device = next(cam_model.parameters()).device
        aff_model = self._affinity_net(device) if self.needs_affinity_net else None
        dataset = self.dataloader.dataset
        dataset.full_init()
        rank, world_size = get_dist_info()
        indices = shard_indices(len(dataset), rank, world_size)
        self.failures, self.processed, self.skipped = [], [], []
        bar = ProgressBar(len(indices)) if rank == 0 and indices else None
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(self.num_threads or threads)
            with torch.no_grad():
                for start in range(0, len(indices), self.chunk_size):
                    self._run_chunk(dataset, indices[start:start + self.chunk_size], cam_model,
                                    aff_model, bar)
        finally:
            torch.set_num_threads(threads)
        self.failures = sorted(f for part in all_gather_object(self.failures) for f in part)
        metrics = {}
        if self.evaluator is not None:
            seen_gt = any(all_gather_object(any(m.results for m in self.evaluator.metrics)))
            if seen_gt:
                metrics = self.evaluator.evaluate(len(dataset))
        if rank == 0:
            self._report(metrics, len(dataset))
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    def _run_chunk(self, dataset, chunk: List[int], cam_model, aff_model, bar) -> None:
        images = []
        for index in chunk:
            img_path, cache, paths = self._paths(dataset, index)
            image = _Image(index, img_path, paths)
            try:
                self._model_pass(dataset, image, cache, cam_model, aff_model)
                images.append(image)
            except (_ConfigError, OutputFolderError):
                raise
            except Exception as e:  # noqa: BLE001 - recorded, the run goes on
                self._fail(image, e, bar)
        # all CRFs of the chunk in one pool; on an error, image by image to find the bad one
        jobs = [(image, name) for image in images for name in image.crf_inputs]
        refined = {id(image): {} for image in images}
        if jobs:
            try:
                outputs = self.crf.batch([image.crf_inputs[name] for image, name in jobs],
                                         [image.img_rgb for image, _ in jobs])
                for (image, name), q in zip(jobs, outputs):
                    refined[id(image)][name] = q
            except Exception:  # noqa: BLE001
                refined = {id(image): None for image in images}
        for image in images:
            try:
                if image.crf_inputs:
                    q = refined[id(image)]
                    if q is None:
                        q = dict(zip(image.crf_inputs, self.crf.batch(
                            list(image.crf_inputs.values()),
                            [image.img_rgb] * len(image.crf_inputs))))
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

    def _fail(self, image: _Image, error: Exception, bar) -> None:
        reason = ' '.join(f'{type(error).__name__}: {error}'.split())  # one line per image
        self.failures.append((image.img_path, reason))
        print_log(f'pseudo labels: skipping {image.img_path}: {reason}', logger='current',
                  level=logging.WARNING)
        if bar is not None:
            bar.update()

    def _model_pass(self, dataset, image: _Image, cache: str, cam_model, aff_model) -> None:
        """Load the sample, compute CAMs / walk, write the outputs that need no CRF."""
        # prepare_data, not dataset[i]: BaseDataset would swap in a random other image when
        # the pipeline returns None. Unreadable images and missing labels raise here.
        dataset, index = leaf_dataset(dataset, image.index)
        data = dataset.prepare_data(index)
        if data is None:
            raise ValueError('the data pipeline dropped the image (returned None)')
        sample = data['data_samples']
        if 'gt_sem_seg' in sample:
            image.gt = sample.gt_sem_seg.data[0].cpu().numpy()
        if not image.todo:
            return
        labels = sample.get('gt_class_labels')
        if labels is None:
            raise _ConfigError(
                f'the dataset sample of {image.img_path} has no gt_class_labels: add '
                'LoadImageLevelLabels to the pseudo-label pipeline and pack it with '
                "PackSegInputs(meta_keys=(..., 'gt_class_labels'))")
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.float32).flatten()
        if not labels.any():
            raise ValueError('the image has no image-level labels (gt_class_labels is all '
                             'zero): there is no class to localise; fix its labels or leave it '
                             'out of the dataset')
        height, width = data['inputs'].shape[-2:]
        scale = min(self.cam_kwargs['scales'])
        if round(min(height, width) * scale) < 1:
            raise ValueError(
                f'the image is {height}x{width} pixels, too small for the CAM scale {scale} '
                f'(it would be resized to nothing); the CAMs need images of at least '
                f'{math.floor(0.5 / scale) + 1} pixels a side (or larger cam_scales)')
        for stage in image.todo:
            remove_stale_temp_files(image.paths[stage])
        img_norm = self._preprocess(cam_model, data)
        image.img_rgb = self._rgb(cam_model, data['inputs'])
        cams, class_ids = self._cams(cam_model, img_norm, labels, cache)
        image.class_ids = class_ids
        if 'cam' in image.todo:
            stack = torch.cat([torch.full_like(cams[:1], self.cam_bg_score), cams])
            self._write(image, 'cam', stack_to_label(stack.argmax(0), class_ids))
        if 'affinity_labels' in image.todo:
            for name, alpha in (('aff_low', self.low_alpha), ('aff_high', self.high_alpha)):
                image.crf_inputs[name] = add_background(cams, alpha).cpu().numpy()
        if {'rw', 'rw_crf'} & set(image.todo):
            head = aff_model.decode_head
            aff = aff_model.predict_affinity(self._preprocess(aff_model, data))
            check_finite(aff, 'the affinities', 'check the AffinityNet checkpoint '
                         f'(--aff-checkpoint {self.aff_checkpoint}) for NaN/inf weights')
            scores = random_walk_cams(cams[None].to(aff.device), aff, radius=head.radius,
                                      stride=head.label_stride, **self.rw_kwargs)[0]
            check_finite(scores, 'the random-walk scores', 'the walk overflowed: lower '
                         f'rw_beta ({self.rw_kwargs["beta"]}) or rw_logt '
                         f'({self.rw_kwargs["logt"]})')
            if 'rw' in image.todo:
                self._write(image, 'rw', stack_to_label(scores.argmax(0), class_ids))
            if 'rw_crf' in image.todo:  # CRF unary from the scores normalised over classes
                probs = scores / scores.sum(0, keepdim=True).clamp_min(1e-5)
                image.crf_inputs['rw_crf'] = probs.cpu().numpy()

    def _crf_pass(self, image: _Image, refined: Dict[str, np.ndarray]) -> None:
        if 'aff_low' in refined:
            self._write(image, 'affinity_labels', affinity_label_from_crf(
                refined['aff_low'], refined['aff_high'], image.class_ids.cpu(),
                self.ignore_index))
        if 'rw_crf' in refined:
            index = torch.from_numpy(refined['rw_crf'].argmax(0))
            self._write(image, 'rw_crf', stack_to_label(index, image.class_ids.cpu()))

    def _evaluate(self, image: _Image) -> None:
        if self.evaluator is None or image.gt is None:
            return
        preds = {s: read_png(image.paths[s]) for s in EVALUATED_STAGES if s in image.paths}
        if preds:
            self.evaluator.process(data_samples=[dict(gt=image.gt, preds=preds)])

    # ------------------------------------------------------------------------- helpers
    @staticmethod
    def _preprocess(model, data: dict) -> Tensor:
        """The model's own normalisation of one packed sample -> ``(1, 3, H, W)``."""
        batch = model.data_preprocessor(
            dict(inputs=[data['inputs']], data_samples=[data['data_samples']]), False)
        return batch['inputs']

    @staticmethod
    def _rgb(model, inputs: Tensor) -> np.ndarray:
        """The packed image ``(3, H, W)`` as an ``(H, W, 3)`` uint8 RGB array (for the CRF)."""
        img = inputs.permute(1, 2, 0).cpu().numpy()
        if getattr(model.data_preprocessor, 'channel_conversion', True):
            img = img[..., ::-1]  # mmcv loads BGR
        if img.dtype != np.uint8:
            img = np.clip(img, 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(img)

    def _cams(self, cam_model, img_norm: Tensor, labels: Tensor,
              cache: str) -> Tuple[Tensor, Tensor]:
        """Multi-scale CAMs ``(K, H, W)`` and classes ``(K,)``, from the cache if valid.

        CAMs are rounded to float16 whether cached or not, so that a resumed run produces the
        same labels as an uninterrupted one.
        """
        wanted = torch.nonzero(labels > 0)[:, 0]
        if osp.isfile(cache):
            try:  # any failure (truncated, corrupt, CRC error, NaN) means: recompute
                with np.load(cache, allow_pickle=False) as f:
                    cams, class_ids = torch.from_numpy(f['cams']), torch.from_numpy(f['class_ids'])
                check_finite(cams, 'the cached CAMs', 'recomputing')
                if (torch.equal(class_ids, wanted)
                        and tuple(cams.shape[1:]) == tuple(img_norm.shape[-2:])):
                    return cams.float().to(img_norm.device), class_ids.to(img_norm.device)
            except Exception as e:  # noqa: BLE001 - zipfile, zlib, EOF, numpy errors alike
                print_log(f'pseudo labels: the CAM cache {cache} is unreadable '
                          f'({type(e).__name__}: {e}); recomputing it', logger='current',
                          level=logging.WARNING)
        cams, class_ids = multi_scale_cam(cam_model.forward_cam, img_norm,
                                          labels.to(img_norm.device), **self.cam_kwargs)
        cams = cams.half()
        check_finite(cams, 'the CAMs', 'check the CAM classifier checkpoint (--cam-checkpoint '
                     f'{self.cam_checkpoint}) for NaN/inf weights')
        if self.save_cams:
            remove_stale_temp_files(cache)
            buf = io.BytesIO()
            np.savez_compressed(buf, cams=cams.cpu().numpy(), class_ids=class_ids.cpu().numpy())
            _write_output(cache, buf.getvalue())
        return cams.float(), class_ids

    @staticmethod
    def _write(image: _Image, stage: str, label: Union[Tensor, np.ndarray]) -> None:
        label = label.cpu().numpy() if isinstance(label, Tensor) else np.asarray(label)
        _write_output(image.paths[stage], encode_png(label.astype(np.uint8)))

    def _report(self, metrics: dict, num_images: int) -> None:
        print_log(f'pseudo labels in {self.out_dir}: stages {", ".join(self.stages)}; rank 0 '
                  f'made {len(self.processed)}, found {len(self.skipped)} complete '
                  f'(of {num_images} images, all ranks)', logger='current')
        failures_file = osp.join(self.out_dir, 'failures.txt')
        if self.failures:
            lines = [f'{path}\t{reason}' for path, reason in self.failures]
            try:
                atomic_write_bytes(failures_file, ('\n'.join(lines) + '\n').encode())
                where = f'listed in {failures_file}'
            except OSError as e:  # the list is in the log all the same
                where = f'{failures_file} could not be written: {e}'
            print_log(f'{len(self.failures)} image(s) failed ({where}):\n' +
                      '\n'.join(lines), logger='current', level=logging.WARNING)
        elif osp.isfile(failures_file):
            os.remove(failures_file)  # from an earlier run whose failures are now fixed
        if metrics:
            metrics = {k.split('/', 1)[-1]: v for k, v in metrics.items()}  # drop the prefix
            table = format_table1({k: v for k, v in metrics.items() if k != 'num_images'},
                                  metrics.get('num_images'))
            atomic_write_bytes(osp.join(self.out_dir, 'table1.md'), (table + '\n').encode())
            atomic_write_bytes(osp.join(self.out_dir, 'metrics.json'),
                               json.dumps(metrics, indent=2).encode())
