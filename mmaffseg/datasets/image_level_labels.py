# Copyright (c) mmaffseg contributors. All rights reserved.
"""Image-level (multi-hot) class labels for weakly supervised segmentation.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018: the CAM network of PSA learns from image-level
labels only, i.e. which of the 20 PASCAL VOC object classes appear in an image.

Convention (shared with :mod:`mmaffseg.wsss`): image-level class ``k`` (0-based, the order of
the classifier outputs) is segmentation label ``k + class_offset`` (``class_offset=1``: label 0
is background, as in PASCAL VOC). The labels of an image come from one of two sources:

* **a label file** (:func:`read_class_label_file`), keyed by the image file name without its
  extension (``2007_000032`` for ``JPEGImages/2007_000032.jpg``). The VOC configs read PSA's
  official labels (derived from the VOC XML annotations), converted once from the official
  ``voc12/cls_labels.npy`` (a pickled dict) by the trusted step
  ``python tools/dataset_converters/psa_cls_labels.py cls_labels.npy
  data/VOCdevkit/VOC2012/cls_labels.json`` (:mod:`mmaffseg.datasets.psa_cls_labels`). Label
  files are read **without unpickling**:

  - ``.json``: ``{"2007_000032": [0, 14], ...}``, the 0-based class indices present;
  - ``.npz``: one multi-hot vector per image, the archive's keys being the image names
    (``np.savez``; read with ``allow_pickle=False``);
  - ``.txt``: one image per line, ``2007_000032 0 14``.

  A ``.npy`` label file (e.g. the official ``cls_labels.npy`` itself) is refused with the
  conversion command: it can only hold named labels as a pickle, and unpickling a file runs
  whatever code it was made to run.
* **its segmentation map** (:func:`class_labels_from_seg_map`): the classes with at least
  ``min_pixels`` pixels, for datasets without image-level annotations. The two sources need not
  agree (the official labels list the object classes of the XML annotations, these the classes
  with labelled pixels); their agreement on VOC has not been measured here.

:class:`LoadImageLevelLabels` puts the vector into ``results['gt_class_labels']``; pack it with
``PackSegInputs(meta_keys=(..., 'gt_class_labels'))`` so that
:class:`~mmaffseg.models.decode_heads.CAMHead` finds it in the data samples.
"""
import json
import os.path as osp
from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


def class_labels_from_seg_map(seg_map: np.ndarray,
                              num_classes: int,
                              class_offset: int = 1,
                              ignore_index: int = 255,
                              min_pixels: int = 1) -> np.ndarray:
    """Multi-hot image-level labels of the classes present in a segmentation map.

    Args:
        seg_map (np.ndarray): Integer label map, any shape.
        num_classes (int): Number of image-level classes (no background): 20 for VOC.
        class_offset (int): Segmentation label of class 0; labels below it are background.
            Default: 1.
        ignore_index (int): Label that is not a class. Default: 255.
        min_pixels (int): Pixels a class needs to count as present. Default: 1.

    Returns:
        np.ndarray: ``(num_classes,)`` float32 in {0, 1}.
    """
    values, counts = np.unique(np.asarray(seg_map), return_counts=True)
    keep = (values != ignore_index) & (values >= class_offset)
    values, counts = values[keep], counts[keep]
    bad = values[values >= class_offset + num_classes]
    if bad.size:
        raise ValueError(
            f'the segmentation map has labels {bad.tolist()} outside background (< '
            f'{class_offset}), the {num_classes} classes ({class_offset}..'
            f'{class_offset + num_classes - 1}) and ignore_index={ignore_index}; check '
            'num_classes / class_offset, or map the labels first (dataset label_map)')
    labels = np.zeros(num_classes, dtype=np.float32)
    labels[(values[counts >= min_pixels] - class_offset).astype(np.int64)] = 1
    return labels


def _multi_hot(indices, num_classes: int, name: str, path: str) -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
        raise ValueError(f'{path}: image {name!r} lists classes {indices.tolist()}, expected '
                         f'0-based indices in 0..{num_classes - 1}')
    labels = np.zeros(num_classes, dtype=np.float32)
    labels[indices] = 1
    return labels


def read_class_label_file(path: str, num_classes: int) -> Dict[str, np.ndarray]:
    """Read image-level labels from a ``.json``, ``.npz`` or ``.txt`` file (module docstring).

    Nothing is unpickled: a pickled file (PSA's ``cls_labels.npy``) raises a ``ValueError`` that
    names the file and the conversion command.

    Args:
        path (str): The label file.
        num_classes (int): Number of classes; every vector must have this length.

    Returns:
        dict[str, np.ndarray]: image name -> ``(num_classes,)`` float32 multi-hot labels.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'image-level label file {path} does not exist')
    ext = osp.splitext(path)[1].lower()
    if ext == '.npy':
        try:
            np.load(path, allow_pickle=False, mmap_mode='r')
            what = 'a plain array without image names'
        except ValueError:
            what = 'a pickle (e.g. PSA\'s cls_labels.npy), which is never unpickled here'
        raise ValueError(
            f'image-level label file {path} is {what}. Convert it once with the trusted step '
            f'"python tools/dataset_converters/psa_cls_labels.py {path} '
            f'{osp.splitext(path)[0]}.json" and set label_file to the .json (or save a '
            '.npz with one multi-hot vector per image name)')
    if ext == '.npz':
        out = {}
        try:
            with np.load(path, allow_pickle=False) as table:
                for name in table.files:
                    out[name] = _checked_vector(table[name], num_classes, name, path)
        except ValueError as e:
            if 'allow_pickle' not in str(e):
                raise
            raise ValueError(f'{path} holds pickled (object) arrays, which are never '
                             'unpickled here: save one numeric multi-hot vector per image '
                             'name (np.savez)') from None
        return out
    if ext == '.json':
        with open(path, encoding='utf-8') as f:
            table = json.load(f)
        if not isinstance(table, dict):
            raise ValueError(f'{path}: a .json label file must map image names to lists of '
                             'class indices, e.g. {"2007_000032": [0, 14]}')
        return {str(k): _multi_hot(v, num_classes, k, path) for k, v in table.items()}
    if ext == '.txt':
        out = {}
        with open(path, encoding='utf-8') as f:
            for line in f:
                fields = line.split()
                if fields:
                    out[fields[0]] = _multi_hot([int(x) for x in fields[1:]], num_classes,
                                                fields[0], path)
        return out
    raise ValueError(f'unsupported image-level label file {path}: use .json (name -> class '
                     'indices), .npz (name -> multi-hot vector) or .txt ("name idx idx ...")')


def _checked_vector(vec, num_classes: int, name: str, path: str) -> np.ndarray:
    vec = np.asarray(vec, dtype=np.float32).reshape(-1)
    if vec.size != num_classes:
        raise ValueError(f'{path}: image {name!r} has a {vec.size}-entry label vector, '
                         f'expected num_classes={num_classes}')
    return (vec > 0).astype(np.float32)


def write_class_label_file(table: Dict[str, np.ndarray], path: str) -> None:
    """Write multi-hot labels (name -> vector) as a ``.json`` (class indices) or ``.npz`` file
    that :func:`read_class_label_file` reads back unchanged.

    Args:
        table (dict[str, np.ndarray]): image name -> multi-hot vector (all the same length).
        path (str): Output file, ``.json`` or ``.npz``.
    """
    ext = osp.splitext(path)[1].lower()
    if ext == '.json':
        data = {str(k): np.flatnonzero(np.asarray(v) > 0).tolist() for k, v in table.items()}
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(data, f, sort_keys=True)
    elif ext == '.npz':
        np.savez_compressed(path, **{str(k): (np.asarray(v) > 0).astype(np.float32)
                                     for k, v in table.items()})
    else:
        raise ValueError(f'unsupported output {path}: use .json or .npz')


def image_name(img_path: str) -> str:
    """The key of an image in a label file: its file name without the extension."""
    return osp.splitext(osp.basename(img_path))[0]


@TRANSFORMS.register_module()
class LoadImageLevelLabels(BaseTransform):
    """Add the image's multi-hot class labels as ``results['gt_class_labels']``.

    Without ``label_file`` the labels are derived from ``results['gt_seg_map']``: place the
    transform right after ``LoadAnnotations`` (before any crop, so that the labels describe the
    whole image, as image-level labels do). With ``label_file`` only ``img_path`` is needed.

    Required keys: ``img_path`` (label file) or ``gt_seg_map`` (derived). Without
    ``label_file``, a sample with neither ``gt_seg_map`` nor ``seg_map_path`` (an image given to
    mmseg's ``inference_model`` or ``MMSegInferencer``) passes through unchanged.
    Added keys: ``gt_class_labels`` (``(num_classes,)`` float32).

    Args:
        num_classes (int): Number of image-level classes (no background). Default: 20 (VOC).
        label_file (str, optional): ``.json`` / ``.npz`` / ``.txt`` label file, read without
            unpickling (module docstring; convert PSA's ``cls_labels.npy`` with
            ``tools/dataset_converters/psa_cls_labels.py``). Default: None (derive from the
            segmentation map).
        class_offset (int): Segmentation label of class 0. Default: 1 (0 is background).
        ignore_index (int): Ignored segmentation label. Default: 255.
        min_pixels (int): Pixels a class needs in the segmentation map to be present.
            Default: 1.
    """

    def __init__(self,
                 num_classes: int = 20,
                 label_file: Optional[str] = None,
                 class_offset: int = 1,
                 ignore_index: int = 255,
                 min_pixels: int = 1) -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.label_file = label_file
        self.class_offset = class_offset
        self.ignore_index = ignore_index
        self.min_pixels = min_pixels
        self._table: Optional[Dict[str, np.ndarray]] = None  # read on first use

    def transform(self, results: dict) -> dict:
        """Add ``gt_class_labels`` to one sample."""
        if self.label_file is not None:
            if self._table is None:
                self._table = read_class_label_file(self.label_file, self.num_classes)
            name = image_name(results['img_path'])
            if name not in self._table:
                raise KeyError(f'image {results["img_path"]} has no image-level labels: '
                               f'{name!r} is not in {self.label_file}')
            labels = self._table[name].copy()
        else:
            if 'gt_seg_map' not in results and 'seg_map_path' not in results:
                # inference on an image (mmseg's inference_model / MMSegInferencer): the
                # prediction then uses every class
                return results
            if 'gt_seg_map' not in results:
                raise KeyError('LoadImageLevelLabels without label_file derives the labels from '
                               'the segmentation map: put it after LoadAnnotations, or give a '
                               'label_file')
            labels = class_labels_from_seg_map(results['gt_seg_map'], self.num_classes,
                                               self.class_offset, self.ignore_index,
                                               self.min_pixels)
        results['gt_class_labels'] = labels
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'label_file={self.label_file!r}, min_pixels={self.min_pixels})')
