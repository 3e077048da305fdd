# Copyright (c) mmaffseg contributors. All rights reserved.
"""Image and label-map loading that names the offending file when an input is unusable."""
import os.path as osp
from typing import Optional

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from mmaffseg.utils.config_errors import DataFileError


@TRANSFORMS.register_module()
class LoadCheckedImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that names the file and the problem when it cannot load.

    mmcv raises a bare ``cv2.error`` (``!buf.empty()``) for an empty file and an
    ``AssertionError`` for an undecodable one. This one raises a :class:`DataFileError` (a
    ``ValueError``) naming the file and saying whether it is missing, empty or not a decodable
    image. Same arguments as ``LoadImageFromFile`` (with ``ignore_empty=True`` it still
    returns None instead).
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of one sample."""
        path = results['img_path']
        try:
            return super().transform(results)
        except Exception as e:  # noqa: BLE001 - re-raised with the file name and the cause
            if isinstance(e, FileNotFoundError) or (self.backend_args is None
                                                    and not osp.exists(path)):
                problem = 'the file does not exist'
            elif self.backend_args is None and osp.isfile(path) and osp.getsize(path) == 0:
                problem = 'the file is empty (0 bytes)'
            else:
                problem = 'the file is corrupt, truncated or not an image'
            raise DataFileError(f'could not load the image {path}: {problem} '
                             f'({type(e).__name__}: {str(e).strip()})') from e


@TRANSFORMS.register_module()
class LoadCheckedAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` plus checks on the decoded label map.

    mmseg's loader fails deep inside numpy on a corrupt PNG, silently misaligns a label map
    whose size differs from its image, squeezes a label map one pixel high or wide to 1-D,
    and leaves values beyond the classes to crash the loss with a bare ``IndexError`` (a
    device-side assert on GPU). This one raises a :class:`DataFileError` (a ``ValueError``)
    naming the file, what was expected and what was found. Use it in place of
    ``LoadAnnotations`` (same arguments), after ``LoadImageFromFile``.

    A sample without ``seg_map_path`` (an image given to mmseg's ``inference_model`` or
    ``MMSegInferencer``, which remove only transforms named ``LoadAnnotations`` from the test
    pipeline, or a test set without label maps) passes through unchanged, so the same test
    pipeline serves evaluation and inference. A ``seg_map_path`` of ``None`` is an error.

    Args:
        num_classes (int, optional): Number of classes of the dataset: label values must be
            below it or equal ``ignore_index`` (checked after ``reduce_zero_label`` and the
            dataset's ``label_map``). None skips the value check. Defaults to None.
        ignore_index (int): The ignored label. Defaults to 255.
        **kwargs: ``LoadAnnotations`` arguments.
    """

    def __init__(self, num_classes: Optional[int] = None, ignore_index: int = 255,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes is not None and (int(num_classes) != num_classes or num_classes < 1):
            raise ValueError(f'LoadCheckedAnnotations: num_classes must be a positive integer '
                             f'or None, got {num_classes!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Load the label map, or pass a sample without ``seg_map_path`` through unchanged."""
        if 'seg_map_path' not in results:
            return results
        if results['seg_map_path'] is None:
            raise ValueError(f'the sample of {results.get("img_path")} has seg_map_path=None: '
                             'give its label map, or leave the key out for inference')
        return super().transform(results)

    def _load_seg_map(self, results: dict) -> None:
        path = results.get('seg_map_path')
        try:
            super()._load_seg_map(results)
        except Exception as e:  # noqa: BLE001 - re-raised with the file name
            raise DataFileError(f'could not decode the label map {path}: the file is corrupt, '
                             f'empty or not an image ({type(e).__name__}: {e})') from e
        seg = results['gt_seg_map']
        img_shape = results.get('ori_shape', results.get('img_shape'))
        if seg.ndim < 2 and img_shape is not None:  # mmseg squeezed a height or width of 1
            if seg.size != img_shape[0] * img_shape[1]:
                raise DataFileError(
                    f'label map {path} has {seg.size} pixel(s) (decoded shape {seg.shape}) but '
                    f'its image {results.get("img_path")} is {img_shape[0]}x{img_shape[1]}; a '
                    'label map must have its image\'s size (regenerate or fix the annotation)')
            seg = results['gt_seg_map'] = seg.reshape(img_shape[:2])
        if seg.ndim != 2:
            raise DataFileError(f'label map {path} must be a 2-D single-channel image, decoded '
                             f'shape {seg.shape}')
        if img_shape is not None and tuple(seg.shape) != tuple(img_shape[:2]):
            raise DataFileError(
                f'label map {path} is {seg.shape[0]}x{seg.shape[1]} but its image '
                f'{results.get("img_path")} is {img_shape[0]}x{img_shape[1]}; a label map must '
                'have its image\'s size (regenerate or fix the annotation)')
        self._check_values(seg, path)

    def _check_values(self, seg: np.ndarray, path: str) -> None:
        """Raise when ``seg`` holds a value >= num_classes other than ignore_index."""
        if self.num_classes is None or seg.size == 0 or seg.max() < self.num_classes:
            return  # one reduction in the common case
        bad = (seg >= self.num_classes) & (seg != self.ignore_index)
        if bad.any():
            values = np.unique(seg[bad])
            raise DataFileError(
                f'label map {path} has values {values[:10].tolist()}'
                f'{"..." if len(values) > 10 else ""} ({int(bad.sum())} pixels) outside the '
                f'{self.num_classes} classes 0..{self.num_classes - 1} and not the ignore '
                f'index {self.ignore_index}; fix the annotation (e.g. convert Cityscapes '
                'labelIds to trainIds) or the dataset\'s classes / num_classes')

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
