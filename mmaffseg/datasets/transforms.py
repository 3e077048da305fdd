# Copyright (c) mmaffseg contributors. All rights reserved.
"""Data pipeline transforms of mmaffseg (registered in mmseg's ``TRANSFORMS``)."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform, to_tensor
from mmengine import fileio
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs, RandomCrop
from mmseg.registry import TRANSFORMS

from ..utils.image_io import decode_image
from .cityscapes_labels import (
    CITYSCAPES_THING_LABEL_IDS,
    CITYSCAPES_VOID_LABEL_IDS,
    decode_cityscapes_instance_ids,
)


@TRANSFORMS.register_module()
class LoadInstanceMap(BaseTransform):
    """Load the Cityscapes-encoded ``*_gtFine_instanceIds.png`` next to a semantic label map.

    The file name comes from ``results['seg_map_path']`` with ``seg_map_suffix`` replaced by
    ``instance_suffix``. The decoded map (see :mod:`mmaffseg.structures.instance_map` for the
    encoding: 0 = no instance, 1.. = instances, ``ignore_index`` = void) is stored as
    ``results['gt_instance_map']`` and its key appended to ``results['seg_fields']``, so mmseg's
    ``Resize``/``RandomResize``, ``RandomCrop`` and ``RandomFlip`` transform it exactly like the
    semantic map (nearest resizing). Pack it with :class:`PackSegInstanceInputs`.

    Put it right after ``LoadAnnotations`` (both are read at the original resolution, so in a
    test pipeline it may follow ``Resize`` like ``LoadAnnotations`` does).

    A sample without ``seg_map_path`` (an image given to mmseg's ``inference_model`` or
    ``MMSegInferencer``, which remove only ``LoadAnnotations`` from the test pipeline) passes
    through unchanged.

    Required keys: ``seg_map_path`` (without it, nothing is loaded); ``gt_seg_map`` (optional,
    its void pixels become void).
    Added keys: ``gt_instance_map``, ``seg_fields``.

    Args:
        seg_map_suffix (str): Suffix of ``seg_map_path`` to replace. Defaults to
            ``'_gtFine_labelTrainIds.png'``.
        instance_suffix (str): Suffix of the instance file. Defaults to
            ``'_gtFine_instanceIds.png'``.
        ignore_index (int): Void value (also the semantic map's). Defaults to 255.
        void_label_ids (Sequence[int]): Raw labelIds that are void. Defaults to Cityscapes'
            0..6.
        crowd_as_ignore (bool): Make thing-class crowds void instead of "no instance".
            Defaults to False.
        crowd_label_ids (Sequence[int]): labelIds of the thing classes. Defaults to
            Cityscapes'.
        imdecode_backend (str): mmcv image decoding backend; ``'cv2'`` keeps 16-bit PNGs.
            Defaults to ``'cv2'``.
        backend_args (dict, optional): mmengine file backend arguments. Defaults to None.
    """

    def __init__(self,
                 seg_map_suffix: str = '_gtFine_labelTrainIds.png',
                 instance_suffix: str = '_gtFine_instanceIds.png',
                 ignore_index: int = 255,
                 void_label_ids: Sequence[int] = CITYSCAPES_VOID_LABEL_IDS,
                 crowd_as_ignore: bool = False,
                 crowd_label_ids: Sequence[int] = CITYSCAPES_THING_LABEL_IDS,
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        self.seg_map_suffix = seg_map_suffix
        self.instance_suffix = instance_suffix
        self.ignore_index = ignore_index
        self.void_label_ids = tuple(void_label_ids)
        self.crowd_as_ignore = crowd_as_ignore
        self.crowd_label_ids = tuple(crowd_label_ids)
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args

    def instance_path(self, seg_map_path: str) -> str:
        """Path of the instance file belonging to a semantic label map."""
        if not seg_map_path.endswith(self.seg_map_suffix):
            raise ValueError(
                f'LoadInstanceMap: cannot derive the instance file from {seg_map_path}: it does '
                f'not end with seg_map_suffix={self.seg_map_suffix!r}; set seg_map_suffix (and '
                'instance_suffix) to match your dataset')
        return seg_map_path[:-len(self.seg_map_suffix)] + self.instance_suffix

    def transform(self, results: dict) -> dict:
        """Load and decode the instance map of one sample."""
        if 'seg_map_path' not in results:  # inference on an image: nothing to load
            return results
        path = self.instance_path(results['seg_map_path'])
        try:
            content = fileio.get(path, backend_args=self.backend_args)
        except (FileNotFoundError, OSError) as e:
            raise FileNotFoundError(
                f'LoadInstanceMap: instance map {path} not found (derived from '
                f'{results["seg_map_path"]}); generate the *{self.instance_suffix} files or set '
                'instance_suffix') from e
        # under the pixel limit of mmaffseg's loaders (mmaffseg.utils.image_io)
        raw = decode_image(content, path, 'unchanged', backend=self.imdecode_backend)
        if raw is None or raw.ndim != 2:
            raise ValueError(f'LoadInstanceMap: {path} must be a single-channel PNG, decoded '
                             f'{None if raw is None else raw.shape}')
        seg = results.get('gt_seg_map')
        expected = seg.shape if seg is not None else results.get('ori_shape')
        if expected is not None and tuple(raw.shape) != tuple(expected[:2]):
            raise ValueError(
                f'LoadInstanceMap: {path} is {raw.shape[0]}x{raw.shape[1]} but its label map / '
                f'image is {expected[0]}x{expected[1]}; the instance map must have the same size')
        results['gt_instance_map'] = decode_cityscapes_instance_ids(
            raw, seg, self.ignore_index, self.void_label_ids, self.crowd_as_ignore,
            self.crowd_label_ids)
        seg_fields = results.setdefault('seg_fields', [])
        if 'gt_instance_map' not in seg_fields:
            seg_fields.append('gt_instance_map')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(instance_suffix={self.instance_suffix!r}, '
                f'ignore_index={self.ignore_index}, crowd_as_ignore={self.crowd_as_ignore})')


@TRANSFORMS.register_module()
class PackSegInstanceInputs(PackSegInputs):
    """mmseg's ``PackSegInputs`` that also packs ``results['gt_instance_map']``.

    The map becomes ``data_sample.gt_instance_map`` (``PixelData`` with ``data`` of shape
    (1, H, W), int64). Without the key it behaves exactly like ``PackSegInputs``.

    Args:
        meta_keys (Sequence[str]): Meta keys to pack, as in ``PackSegInputs``.
    """

    def transform(self, results: dict) -> dict:
        """Pack inputs, semantic and instance ground truth."""
        packed = super().transform(results)
        if 'gt_instance_map' in results:
            inst = np.ascontiguousarray(results['gt_instance_map'][None].astype(np.int64))
            packed['data_samples'].gt_instance_map = PixelData(data=to_tensor(inst))
        return packed


@TRANSFORMS.register_module()
class RandomCropWithOffset(RandomCrop):
    """mmseg's ``RandomCrop`` that also records where the crop lies in the image it cut.

    HANet (Choi et al., "Cars Can't Fly up in the Sky: Improving Urban-Scene Segmentation via
    Height-driven Attention Networks", CVPR 2020) needs the absolute row of each crop row in
    the original image. With ``ori_shape`` and ``scale_factor``, the offset recorded here is
    enough to recover it (see :mod:`mmaffseg.ops.row_positions`).

    Added key: ``crop_offset`` = ``(top, left)`` in pixels of the (resized) image that was
    cropped; an earlier ``crop_offset`` is added to, so repeated crops compose. Put it after
    ``Resize``/``RandomResize`` and before ``RandomFlip``, and pack the key with::

        dict(type='PackSegInputs',
             meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                        'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
                        'crop_offset'))

    Args:
        crop_size (int | tuple[int, int]): Crop ``(h, w)``, as in ``RandomCrop``.
        cat_max_ratio (float): Maximum share of one category in the crop, as in
            ``RandomCrop``. Defaults to 1.
        ignore_index (int): Label ignored by ``cat_max_ratio``. Defaults to 255.
    """

    def crop(self, img: np.ndarray, crop_bbox: tuple) -> np.ndarray:
        """Crop, remembering the box (the last call of ``transform`` uses the final box)."""
        self._last_crop_bbox = crop_bbox
        return super().crop(img, crop_bbox)

    def transform(self, results: dict) -> dict:
        """Crop the image and label maps and record ``crop_offset``."""
        results = super().transform(results)
        crop_y1, _, crop_x1, _ = self._last_crop_bbox
        top, left = results.get('crop_offset', (0, 0))
        results['crop_offset'] = (int(top) + int(crop_y1), int(left) + int(crop_x1))
        return results
