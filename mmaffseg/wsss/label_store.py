# Copyright (c) mmaffseg contributors. All rights reserved.
"""Where and how the PSA pseudo-label runner keeps its outputs: paths, PNGs, the CAM cache.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

:class:`PseudoLabelStore` maps a dataset item to its output files under ``out_dir``
(``<stage folder>/<label path>``, :func:`label_relpath`; the CAM cache
``cams/<...>.npz``), writes every file atomically (:mod:`mmaffseg.utils.atomic_io`: an output
that exists is complete, so a re-run resumes by checking which exist) and turns a write that no
later image could escape (read-only folder, full disk) into :class:`OutputFolderError`. It
reads nothing but files and computes nothing: the labels come from
:mod:`mmaffseg.wsss.pseudo_label_stages`, the loop is :mod:`mmaffseg.wsss.pseudo_label_loop`.

===================  ============================  ============================================
stage                file under ``out_dir``        content
===================  ============================  ============================================
(CAM cache)          ``cams/<...>.npz``            multi-scale CAMs (float16) and their classes
``cam``              ``cam/<label path>``          uint8 PNG label map, mmseg seg-map layout
``affinity_labels``  ``affinity_labels/<...>``     idem (255 unknown)
``rw``               ``rw/<label path>``           idem
``rw_crf``           ``rw_crf/<label path>``       idem
(report)             :data:`REPORT_FILES`          evaluation, failed images: rewritten by
                                                   every run from the outputs
(record)             ``provenance.json``           what made each stage (written and checked
                                                   by ``pseudo_label_provenance``)
(record)             ``provenance_images.json``    the sha256 of the images and masks
===================  ============================  ============================================

``<label path>`` is the image's path relative to ``data_prefix.img_path`` with ``img_suffix``
replaced by ``seg_map_suffix``: a stage folder can be used as ``data_prefix.seg_map_path`` of a
second-stage mmseg config for the same images.
"""
import bisect
import errno
import io
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.dataset import ConcatDataset
from mmengine.logging import print_log
from torch import Tensor

from mmaffseg.ops.psa_stages import STAGE_DIRS
from mmaffseg.utils.atomic_io import atomic_write_bytes, remove_stale_temp_files
from mmaffseg.utils.config_errors import OutputDirError
from mmaffseg.utils.output_folder import check_output_folder

from .pseudo_label_stages import check_finite

#: The folder of the CAM cache under ``out_dir``.
CAM_CACHE_DIR = 'cams'
#: The run does not start with less free space than this in ``out_dir``.
MIN_FREE_BYTES = 64 * 2**20
#: Write errors that no other image can escape: stop the run.
_FATAL_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
#: How the runner's output folder is named in messages.
OUT_DIR_ARGUMENT = '--out (test_cfg.out_dir)'
#: The report of a run, rewritten from the outputs by every run.
REPORT_FILES = ('table1.md', 'metrics.json', 'failures.txt')


class OutputFolderError(OutputDirError):
    """The output folder cannot take the outputs (read-only, missing rights, disk full)."""


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
    """The dataset that holds item ``index`` of a (possibly nested) :class:`ConcatDataset`, and
    the item's index there (through the public ``datasets`` and ``cumulative_sizes``)."""
    while isinstance(dataset, ConcatDataset):
        if not -len(dataset) <= index < len(dataset):
            raise IndexError(f'index {index} is out of range for a ConcatDataset of '
                             f'{len(dataset)} items')
        index = index % len(dataset)
        which = bisect.bisect_right(dataset.cumulative_sizes, index)
        index -= dataset.cumulative_sizes[which - 1] if which else 0
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


def write_output(path: str, data: bytes) -> None:
    """Write an output atomically; a read-only folder or a full disk raises
    :class:`OutputFolderError` (no later image could be written either)."""
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        if e.errno in _FATAL_WRITE_ERRNOS:
            raise OutputFolderError(
                e.errno, f'cannot write {path} ({e.strerror or e}): the output folder is '
                'read-only or full; no later image could be written either, so the run stops '
                '(the outputs written so far are complete: re-run to resume)') from e
        raise


class PseudoLabelStore:
    """The output files of a pseudo-label run under ``out_dir``.

    Args:
        out_dir (str): Output root.
        stages (Sequence[str]): The stages whose label files are made (keys of
            :data:`~mmaffseg.ops.psa_stages.STAGE_DIRS`).
    """

    def __init__(self, out_dir: str, stages: Sequence[str]) -> None:
        unknown = [s for s in stages if s not in STAGE_DIRS]
        if unknown or not stages:
            raise ValueError(f'stages must be a non-empty subset of {tuple(STAGE_DIRS)}, got '
                             f'{tuple(stages)}')
        self.out_dir = out_dir
        self.stages = tuple(s for s in STAGE_DIRS if s in stages)  # pipeline order

    def check(self) -> int:
        """Create ``out_dir``, check it is writable with :data:`MIN_FREE_BYTES` free; return the
        free bytes (raises :class:`OutputFolderError`)."""
        return check_output_folder(self.out_dir, OUT_DIR_ARGUMENT, MIN_FREE_BYTES,
                                   OutputFolderError)

    @staticmethod
    def _item(dataset, index: int) -> Tuple[dict, str]:
        """The data info of item ``index`` and its :func:`label_relpath`."""
        dataset, index = leaf_dataset(dataset, index)
        info = dataset.get_data_info(index)
        prefix = getattr(dataset, 'data_prefix', {}).get('img_path')
        rel = label_relpath(info['img_path'], prefix, getattr(dataset, 'img_suffix', ''),
                            getattr(dataset, 'seg_map_suffix', '.png'))
        return info, rel

    def paths(self, dataset, index: int) -> Tuple[str, str, Dict[str, str]]:
        """The image file of item ``index``, its CAM cache file and its label file per stage."""
        info, rel = self._item(dataset, index)
        paths = {s: osp.join(self.out_dir, STAGE_DIRS[s], rel) for s in self.stages}
        cache = osp.join(self.out_dir, CAM_CACHE_DIR, osp.splitext(rel)[0] + '.npz')
        return info['img_path'], cache, paths

    def image_files(self, dataset, index: int) -> Tuple[List[str], List[str]]:
        """The input files of item ``index`` (its image and mask) and every output of it under
        ``out_dir`` (the CAM cache and a label per stage of
        :data:`~mmaffseg.ops.psa_stages.STAGE_DIRS`)."""
        info, rel = self._item(dataset, index)
        inputs = [info['img_path']] + ([info['seg_map_path']] if info.get('seg_map_path')
                                       else [])
        outputs = [osp.join(self.out_dir, CAM_CACHE_DIR, osp.splitext(rel)[0] + '.npz')]
        outputs += [osp.join(self.out_dir, d, rel) for d in STAGE_DIRS.values()]
        return inputs, outputs

    def stage_folders(self) -> Dict[str, str]:
        """The folder of every stage (all of :data:`~mmaffseg.ops.psa_stages.STAGE_DIRS`) and
        of the CAM cache."""
        folders = {CAM_CACHE_DIR: osp.join(self.out_dir, CAM_CACHE_DIR)}
        folders.update({s: osp.join(self.out_dir, d) for s, d in STAGE_DIRS.items()})
        return folders

    def report_files(self) -> List[str]:
        """The files of :data:`REPORT_FILES` under ``out_dir``."""
        return [osp.join(self.out_dir, name) for name in REPORT_FILES]

    @staticmethod
    def missing(paths: Dict[str, str]) -> List[str]:
        """The stages whose file does not exist yet (to make on this run)."""
        return [s for s, p in paths.items() if not osp.isfile(p)]

    @staticmethod
    def clear_interrupted(paths: Sequence[str]) -> None:
        """Remove what interrupted writes of ``paths`` left behind."""
        for path in paths:
            remove_stale_temp_files(path)

    @staticmethod
    def write_label(path: str, label) -> None:
        """Write a ``(H, W)`` label map (tensor or array) as a PNG, atomically."""
        label = label.cpu().numpy() if isinstance(label, Tensor) else np.asarray(label)
        write_output(path, encode_png(label.astype(np.uint8)))

    @staticmethod
    def load_cams(cache: str, class_ids: Tensor,
                  size: Tuple[int, int]) -> Optional[Tuple[Tensor, Tensor]]:
        """Cached CAMs ``(K, H, W)`` (float16) and their classes, or None when the cache is
        absent, unreadable, non-finite or for other classes / another size."""
        if not osp.isfile(cache):
            return None
        try:  # any failure (truncated, corrupt, CRC error, NaN) means: recompute
            with np.load(cache, allow_pickle=False) as f:
                cams, cached_ids = torch.from_numpy(f['cams']), torch.from_numpy(f['class_ids'])
            check_finite(cams, 'the cached CAMs', 'recomputing')
            if torch.equal(cached_ids, class_ids.cpu()) and tuple(cams.shape[1:]) == tuple(size):
                return cams, cached_ids
        except Exception as e:  # noqa: BLE001 - zipfile, zlib, EOF, numpy errors alike
            print_log(f'pseudo labels: the CAM cache {cache} is unreadable '
                      f'({type(e).__name__}: {e}); recomputing it', logger='current',
                      level=logging.WARNING)
        return None

    @staticmethod
    def save_cams(cache: str, cams: Tensor, class_ids: Tensor) -> None:
        """Cache CAMs and their classes (compressed ``.npz``), atomically."""
        remove_stale_temp_files(cache)
        buf = io.BytesIO()
        np.savez_compressed(buf, cams=cams.cpu().numpy(), class_ids=class_ids.cpu().numpy())
        write_output(cache, buf.getvalue())

    def write_failures(self, failures: List[Tuple[str, str]]) -> str:
        """Write ``failures.txt`` (image, reason per line) or remove a stale one; return where
        the list is, for the log."""
        failures_file = osp.join(self.out_dir, REPORT_FILES[2])
        if not failures:
            if osp.isfile(failures_file):
                os.remove(failures_file)  # from an earlier run whose failures are now fixed
            return ''
        lines = [f'{path}\t{reason}' for path, reason in failures]
        try:
            atomic_write_bytes(failures_file, ('\n'.join(lines) + '\n').encode())
            return f'listed in {failures_file}'
        except OSError as e:  # the list is in the log all the same
            return f'{failures_file} could not be written: {e}'

    def write_metrics(self, table: str, metrics: dict) -> None:
        """Write the Table-1 markdown (``table1.md``) and the metrics (``metrics.json``)."""
        table_file, metrics_file = self.report_files()[:2]
        atomic_write_bytes(table_file, (table + '\n').encode())
        atomic_write_bytes(metrics_file, json.dumps(metrics, indent=2).encode())
