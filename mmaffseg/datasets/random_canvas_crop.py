# Copyright (c) mmaffseg contributors. All rights reserved.
"""Fixed-size random crop that puts a smaller image at a random place on a filled canvas.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018: the official code (jiwoon-ahn/psa,
``tool/imutils.RandomCrop``, used by ``train_cls.py`` and ``train_aff.py``) crops every image to
a ``cropsize`` square. Along each axis independently, an image longer than the crop is cut at a
uniformly random offset, and an image shorter than the crop is pasted at a uniformly random
offset into a zero canvas, so small images are also translated. mmseg's ``RandomCrop`` keeps a
small image at the top left and leaves the rest to the data preprocessor's bottom / right
padding.

The canvas value is the caller's: the reference's zero is "zero after normalisation" for the
CAM network (it normalises before cropping), which in image space is the data preprocessor's
``mean`` (give it in the pipeline's channel order, BGR after ``LoadImageFromFile``; the canvas
is then float32 so that the mean is exact), and black for AffinityNet (it crops before
normalising). Label maps get ``seg_pad_val`` (255: ignored, what the reference's empty score
maps become).
"""
from typing import Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

Number = Union[int, float]


def canvas_crop_window(size: int, crop: int, draw: int) -> Tuple[int, int, int]:
    """Where one axis of an image lands in a crop of ``crop`` pixels.

    Args:
        size (int): Image length along the axis.
        crop (int): Crop length.
        draw (int): The random integer in ``[0, |size - crop|]``: the image offset when the
            image is longer than the crop, the canvas offset otherwise.

    Returns:
        tuple[int, int, int]: ``(image_start, canvas_start, length)``: ``length`` pixels from
        ``image_start`` go to ``canvas_start``.
    """
    if size > crop:
        return draw, 0, crop
    return 0, draw, size


@TRANSFORMS.register_module()
class RandomCanvasCrop(BaseTransform):
    """Crop to exactly ``crop_size``; an axis shorter than the crop lands at a random offset.

    See the module docstring (PSA's ``imutils.RandomCrop``). The image and every map in
    ``seg_fields`` are cut and placed with the same offsets.

    Required keys: ``img``; ``seg_fields`` (optional).
    Modified keys: ``img``, ``img_shape``, the maps of ``seg_fields``.
    Added keys: ``canvas_offset`` = ``(top, left)`` of the image content in the crop,
    ``crop_offset`` = ``(top, left)`` of the crop in the image it cut (negative where the image
    lies inside the canvas; an earlier ``crop_offset`` is added to).

    Args:
        crop_size (int | tuple[int, int]): Crop ``(h, w)``.
        img_pad_val (float | Sequence[float]): Canvas value of the image, one value or one per
            channel (in the image's channel order). Defaults to 0.
        seg_pad_val (int): Canvas value of the label maps. Defaults to 255.
    """

    def __init__(self,
                 crop_size: Union[int, Tuple[int, int]],
                 img_pad_val: Union[Number, Sequence[Number]] = 0,
                 seg_pad_val: int = 255) -> None:
        super().__init__()
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        crop_size = tuple(crop_size)
        if len(crop_size) != 2 or not all(isinstance(c, int) and c > 0 for c in crop_size):
            raise ValueError(f'RandomCanvasCrop crop_size must be a positive int or a pair of '
                             f'them (h, w), got {crop_size!r}')
        self.crop_size = crop_size
        self.img_pad_val = img_pad_val
        self.seg_pad_val = seg_pad_val

    def _draw_offset(self, space: int) -> int:
        """A uniform integer in ``[0, space]`` (the reference's ``randrange(space + 1)``)."""
        return int(np.random.randint(0, space + 1))

    def _canvas(self, img: np.ndarray, pad_val: Union[Number, Sequence[Number]]) -> np.ndarray:
        """An empty crop for ``img``, filled with ``pad_val``."""
        shape = self.crop_size + img.shape[2:]
        values = np.asarray(pad_val, dtype=np.float64).reshape(-1)
        channels = img.shape[2] if img.ndim == 3 else 1
        if values.size not in (1, channels):
            raise ValueError(f'RandomCanvasCrop img_pad_val has {values.size} values for an '
                             f'image with {channels} channel(s); give one value or one per '
                             'channel')
        dtype = img.dtype
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            exact = np.all(values == np.round(values))
            if not (exact and values.min() >= info.min and values.max() <= info.max):
                dtype = np.float32  # e.g. a mean pixel 103.53: keep it exact
        canvas = np.empty(shape, dtype=dtype)
        canvas[...] = values if img.ndim == 3 else values[0]
        return canvas

    def transform(self, results: dict) -> dict:
        """Crop the image and the label maps onto their canvases."""
        img = results['img']
        height, width = img.shape[:2]
        crop_h, crop_w = self.crop_size
        src_y, dst_y, rows = canvas_crop_window(
            height, crop_h, self._draw_offset(abs(height - crop_h)))
        src_x, dst_x, cols = canvas_crop_window(
            width, crop_w, self._draw_offset(abs(width - crop_w)))

        def place(array: np.ndarray, canvas: np.ndarray) -> np.ndarray:
            canvas[dst_y:dst_y + rows, dst_x:dst_x + cols] = \
                array[src_y:src_y + rows, src_x:src_x + cols]
            return canvas

        results['img'] = place(img, self._canvas(img, self.img_pad_val))
        for key in results.get('seg_fields', []):
            seg = results[key]
            if seg.shape[:2] != (height, width):
                raise ValueError(f'RandomCanvasCrop: {key} is {seg.shape[0]}x{seg.shape[1]} but '
                                 f'the image is {height}x{width}; label maps must match the '
                                 'image size')
            results[key] = place(seg, np.full(self.crop_size + seg.shape[2:], self.seg_pad_val,
                                              dtype=seg.dtype))
        results['img_shape'] = self.crop_size
        results['canvas_offset'] = (dst_y, dst_x)
        top, left = results.get('crop_offset', (0, 0))
        results['crop_offset'] = (int(top) + src_y - dst_y, int(left) + src_x - dst_x)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'img_pad_val={self.img_pad_val}, seg_pad_val={self.seg_pad_val})')
