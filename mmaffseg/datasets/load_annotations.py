# Copyright (c) mmaffseg contributors. All rights reserved.
"""Image and label-map loading that names the offending file when an input is unusable.

Both loaders decode with :func:`mmaffseg.utils.image_io.decode_image`: a pixel limit checked
before decoding, EXIF orientation ignored (images decode to the grid their label maps are on).
"""
import errno
import logging
import os.path as osp
from typing import List, Optional, Set

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from mmaffseg.utils.config_errors import DataFileError
from mmaffseg.utils.image_io import decode_image, max_image_pixels


@TRANSFORMS.register_module()
class LoadCheckedImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that names the file and the problem when it cannot load,
    refuses images above a pixel limit before decoding them and ignores EXIF orientation.

    mmcv raises a bare ``cv2.error`` (``!buf.empty()``) for an empty file and an
    ``AssertionError`` for an undecodable one. This one raises a :class:`DataFileError` (a
    ``ValueError``) naming the file and saying whether it is missing, empty, not a decodable
    image or too large. Images decode to their stored pixel grid, the grid of their label maps
    (:mod:`mmaffseg.utils.image_io`): the ``color_type`` ``'color'`` and ``'grayscale'`` do not
    apply an EXIF orientation tag. With ``ignore_empty=True`` a file that cannot be read or
    decoded still gives None instead; an image above the pixel limit is always an error.

    Args:
        max_pixels (int, optional): Refuse images with more pixels than this (read from the
            header, before decoding). Defaults to None: ``$MMAFFSEG_MAX_IMAGE_PIXELS``, else
            :data:`~mmaffseg.utils.image_io.DEFAULT_MAX_PIXELS` (8.4 Mpx).
        **kwargs: ``LoadImageFromFile`` arguments.
    """

    def __init__(self, max_pixels: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        max_image_pixels(max_pixels)  # a bad value fails here, not at the first image
        self.max_pixels = max_pixels

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of one sample."""
        path = results['img_path']
        try:
            if self.file_client_args is not None:
                content = fileio.FileClient.infer_client(self.file_client_args,
                                                         path).get(path)
            else:
                content = fileio.get(path, backend_args=self.backend_args)
            img = decode_image(content, path, self.color_type, backend=self.imdecode_backend,
                               max_pixels=self.max_pixels)
            if img is None:
                raise ValueError('failed to load image: the decoder returned none')
        except DataFileError:
            raise  # above the pixel limit
        except Exception as e:  # noqa: BLE001 - re-raised with the file name and the cause
            if self.ignore_empty:
                return None
            if isinstance(e, OSError) and e.errno == errno.ELOOP:
                problem = 'the path is a loop of symbolic links; remove or fix the link'
            elif isinstance(e, FileNotFoundError) or (self.backend_args is None
                                                    and not osp.exists(path)):
                problem = 'the file does not exist'
            elif self.backend_args is None and osp.isfile(path) and osp.getsize(path) == 0:
                problem = 'the file is empty (0 bytes)'
            else:
                problem = 'the file is corrupt, truncated or not an image'
            raise DataFileError(f'could not load the image {path}: {problem} '
                                f'({type(e).__name__}: {str(e).strip()})') from e
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, max_pixels={self.max_pixels})'


@TRANSFORMS.register_module()
class LoadCheckedAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` plus checks on the decoded label map.

    mmseg's loader fails deep inside numpy on a corrupt PNG, silently misaligns a label map
    whose size differs from its image, squeezes a label map one pixel high or wide to 1-D,
    reads a 16-bit label map modulo 256 (a stored 256 + k becomes class k), a floating-point
    one truncated (3.5 becomes class 3, nan class 0) and leaves values beyond the classes to
    crash the loss with a bare ``IndexError`` (a device-side assert on GPU). This one raises a
    :class:`DataFileError` (a ``ValueError``) naming the file, what was expected and what was
    found, refuses label maps above the pixel limit before decoding them
    (as :class:`LoadCheckedImageFromFile` does images), and warns once per file about a label
    map that holds only ``ignore_index`` (the sample trains nothing: loss 0, accuracy 100 %),
    with the number of such files met so far. Use it in place of ``LoadAnnotations`` (same
    arguments), after ``LoadImageFromFile``.

    A sample without ``seg_map_path`` (an image given to mmseg's ``inference_model`` or
    ``MMSegInferencer``, which remove only transforms named ``LoadAnnotations`` from the test
    pipeline, or a test set without label maps) passes through unchanged, so the same test
    pipeline serves evaluation and inference. A ``seg_map_path`` of ``None`` is an error.

    Args:
        num_classes (int, optional): Number of classes of the dataset: label values must be
            below it or equal ``ignore_index`` (checked after ``reduce_zero_label`` and the
            dataset's ``label_map``). None skips the value check (values above 255 are always
            refused). Defaults to None.
        ignore_index (int): The ignored label. Defaults to 255.
        max_pixels (int, optional): The pixel limit of label maps, as in
            :class:`LoadCheckedImageFromFile`. Defaults to None.
        **kwargs: ``LoadAnnotations`` arguments.
    """

    def __init__(self, num_classes: Optional[int] = None, ignore_index: int = 255,
                 max_pixels: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes is not None and (int(num_classes) != num_classes or num_classes < 1):
            raise ValueError(f'LoadCheckedAnnotations: num_classes must be a positive integer '
                             f'or None, got {num_classes!r}')
        max_image_pixels(max_pixels)  # a bad value fails here, not at the first label map
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.max_pixels = max_pixels
        self._ignore_only_files: Set[str] = set()  # warned about (in this process)

    def transform(self, results: dict) -> dict:
        """Load the label map, or pass a sample without ``seg_map_path`` through unchanged."""
        if 'seg_map_path' not in results:
            return results
        if results['seg_map_path'] is None:
            raise ValueError(f'the sample of {results.get("img_path")} has seg_map_path=None: '
                             'give its label map, or leave the key out for inference')
        return super().transform(results)

    def read_label_map(self, results: dict) -> np.ndarray:
        """The checked label map of a sample (class indices after ``reduce_zero_label`` and
        ``label_map``), without changing ``results``.

        Raises:
            DataFileError: The file cannot be decoded, is above the pixel limit, or holds a
                map that is not single-channel, not of its image's size or has values that
                are neither classes nor ``ignore_index``.
        """
        path = results.get('seg_map_path')
        try:
            content = fileio.get(path, backend_args=self.backend_args)
            raw = decode_image(content, path, 'unchanged', backend=self.imdecode_backend,
                               max_pixels=self.max_pixels)
            if raw is None:
                raise ValueError('the decoder returned no image')
        except DataFileError:
            raise  # above the pixel limit
        except Exception as e:  # noqa: BLE001 - re-raised with the file name
            problem = ('the path is a loop of symbolic links; remove or fix the link'
                       if isinstance(e, OSError) and e.errno == errno.ELOOP else
                       'the file is corrupt, empty or not an image')
            raise DataFileError(f'could not decode the label map {path}: {problem} '
                                f'({type(e).__name__}: {e})') from e
        raw = self._checked_shape(np.squeeze(raw), results)
        if raw.dtype.kind in 'fc' and raw.size:  # a float map (TIFF 'F'): only whole numbers
            inexact = ~np.isfinite(raw) | (raw != np.round(raw))
            if inexact.any():
                self._refuse_values(raw, inexact, path,
                                    f'a floating-point ({raw.dtype}) label map holding values '
                                    'that are not whole class indices, which mmseg would read '
                                    'truncated (3.5 as class 3, nan as class 0)')
        if raw.dtype != np.uint8 and raw.size and (raw.min() < 0 or raw.max() > 255):
            self._refuse_values(raw, (raw < 0) | (raw > 255), path,
                                f'a {raw.dtype.itemsize * 8}-bit label map holding values '
                                'beyond 0..255, which mmseg would read modulo 256 (256 + k as '
                                'class k)')
        seg = raw.astype(np.uint8)
        reduce_zero_label = (results.get('reduce_zero_label', False)
                             if self.reduce_zero_label is None else self.reduce_zero_label)
        if reduce_zero_label:  # 0 (background) becomes ignored, 1..255 move down by one
            seg = np.where(seg == 0, 255, seg - 1).astype(np.uint8)
            seg[seg == 254] = 255
        if results.get('label_map') is not None:
            mapped = seg.copy()
            for old_id, new_id in results['label_map'].items():
                mapped[seg == old_id] = new_id
            seg = mapped
        self._check_values(seg, path)
        return seg

    def _load_seg_map(self, results: dict) -> None:
        if self.reduce_zero_label is not None and results.get(
                'reduce_zero_label', self.reduce_zero_label) != self.reduce_zero_label:
            raise ValueError(f'LoadCheckedAnnotations: reduce_zero_label='
                             f'{self.reduce_zero_label} but the dataset has '
                             f'reduce_zero_label={results["reduce_zero_label"]}; set the same '
                             'value in both (or leave the transform\'s at None)')
        seg = results['gt_seg_map'] = self.read_label_map(results)
        results.setdefault('seg_fields', []).append('gt_seg_map')
        if seg.size and (seg == self.ignore_index).all():
            self._warn_ignore_only(results['seg_map_path'])

    def _warn_ignore_only(self, path: str) -> None:
        if path in self._ignore_only_files:
            return
        self._ignore_only_files.add(path)
        print_log(f'label map {path} holds only the ignore index {self.ignore_index}: its '
                  'sample trains nothing (loss 0, accuracy 100 %) '
                  f'({len(self._ignore_only_files)} such label map(s) met so far); fix or '
                  'remove it', logger='current', level=logging.WARNING)

    def _checked_shape(self, seg: np.ndarray, results: dict) -> np.ndarray:
        """``seg`` as a 2-D map of its image's size (restoring a squeezed height or width of
        1), or a :class:`DataFileError`."""
        path = results.get('seg_map_path')
        img_shape = results.get('ori_shape', results.get('img_shape'))
        if seg.ndim < 2 and img_shape is not None:  # squeezed a height or width of 1
            if seg.size != img_shape[0] * img_shape[1]:
                raise DataFileError(
                    f'label map {path} has {seg.size} pixel(s) (decoded shape {seg.shape}) but '
                    f'its image {results.get("img_path")} is {img_shape[0]}x{img_shape[1]}; a '
                    'label map must have its image\'s size (regenerate or fix the annotation)')
            seg = seg.reshape(img_shape[:2])
        if seg.ndim != 2:
            raise DataFileError(f'label map {path} must be a 2-D single-channel image, decoded '
                                f'shape {seg.shape}')
        if img_shape is not None and tuple(seg.shape) != tuple(img_shape[:2]):
            raise DataFileError(
                f'label map {path} is {seg.shape[0]}x{seg.shape[1]} but its image '
                f'{results.get("img_path")} is {img_shape[0]}x{img_shape[1]}; a label map must '
                'have its image\'s size (regenerate or fix the annotation)')
        return seg

    def _check_values(self, seg: np.ndarray, path: str) -> None:
        """Raise when ``seg`` holds a value >= num_classes other than ignore_index."""
        if self.num_classes is None or seg.size == 0 or seg.max() < self.num_classes:
            return  # one reduction in the common case
        bad = (seg >= self.num_classes) & (seg != self.ignore_index)
        if bad.any():
            self._refuse_values(seg, bad, path, 'values')

    def _refuse_values(self, seg: np.ndarray, bad: np.ndarray, path: str, what: str) -> None:
        values = np.unique(seg[bad])
        classes = (f'the {self.num_classes} classes 0..{self.num_classes - 1}'
                   if self.num_classes is not None else 'the classes')
        raise DataFileError(
            f'label map {path} has {what} {values[:10].tolist()}'
            f'{"..." if len(values) > 10 else ""} ({int(bad.sum())} pixels) outside '
            f'{classes} and not the ignore index {self.ignore_index}; fix the annotation (e.g. '
            'convert Cityscapes labelIds to trainIds, save 8-bit class indices) or the '
            'dataset\'s classes / num_classes')

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, max_pixels={self.max_pixels})')


#: mmcv's / mmseg's loaders -> mmaffseg's checked ones (which take the same arguments).
CHECKED_LOADERS = {'LoadImageFromFile': 'LoadCheckedImageFromFile',
                   'LoadAnnotations': 'LoadCheckedAnnotations'}


def use_checked_loaders(pipeline: List,
                        num_classes: Optional[int] = None,
                        ignore_index: Optional[int] = None) -> List:
    """Rename the ``LoadImageFromFile`` and ``LoadAnnotations`` transform configs of
    ``pipeline`` (a list of dicts, changed in place and returned) to the checked loaders,
    also inside wrapping transforms (``TestTimeAug``, ``RandomChoice``: their ``transforms``).

    Args:
        pipeline (list): Transform configs.
        num_classes (int, optional): The dataset's number of classes, given to each renamed
            ``LoadAnnotations`` that does not set ``num_classes``: its label values are then
            checked (mmseg's loader leaves a value beyond the classes to crash the loss, or to
            be dropped silently by ``IoUMetric``). Defaults to None (not checked).
        ignore_index (int, optional): The dataset's ignore index, given with ``num_classes``
            when the transform sets none. Defaults to None (255).
    """
    for transform in pipeline:
        if isinstance(transform, (list, tuple)):
            use_checked_loaders(transform, num_classes, ignore_index)
            continue
        if not isinstance(transform, dict):
            continue
        if transform.get('type') in CHECKED_LOADERS:
            if transform['type'] == 'LoadAnnotations' and num_classes is not None:
                transform.setdefault('num_classes', num_classes)
                if ignore_index is not None:
                    transform.setdefault('ignore_index', ignore_index)
            transform['type'] = CHECKED_LOADERS[transform['type']]
        if isinstance(transform.get('transforms'), (list, tuple)):
            use_checked_loaders(transform['transforms'], num_classes, ignore_index)
    return pipeline
