# Copyright (c) mmaffseg contributors. All rights reserved.
"""Colour jitter with torchvision's ``ColorJitter`` semantics, as an mmcv transform.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018: the official code (jiwoon-ahn/psa,
``train_cls.py`` and ``train_aff.py``) augments with torchvision's
``ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1)`` on PIL images. mmseg's
``PhotoMetricDistortion`` is a different recipe (additive brightness +-32, contrast and
saturation factors 0.5-1.5, HSV hue shift of +-18 degrees), hence this transform.

Semantics (torchvision's ``ColorJitter`` on a PIL image): the factors are drawn uniformly,
brightness ``b`` from ``[max(0, 1 - brightness), 1 + brightness]``, likewise contrast ``c`` and
saturation ``s``, hue ``h`` from ``[-hue, hue]``; the four adjustments are applied in a random
order, each on the uint8 result of the previous one:

* brightness: blend with black, ``b * x``;
* contrast: blend with the mean grey level ``m`` of the image (PIL's luma, rounded),
  ``m + c * (x - m)``;
* saturation: blend with the pixel's own grey level ``g``, ``g + s * (x - g)``;
* hue: rotate the hue channel of PIL's 8-bit HSV by ``int(255 h)`` (wrapping).

Each blend is clipped to 0..255 and truncated to uint8, as PIL does. The operations are PIL's
(``ImageEnhance`` and its HSV conversion), the ones torchvision calls for PIL images.
"""
from typing import Callable, List, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS
from PIL import Image, ImageEnhance


def adjust_brightness(img: Image.Image, factor: float) -> Image.Image:
    """Blend with black by ``factor`` (1: unchanged)."""
    return ImageEnhance.Brightness(img).enhance(factor)


def adjust_contrast(img: Image.Image, factor: float) -> Image.Image:
    """Blend with the image's mean grey level by ``factor`` (1: unchanged)."""
    return ImageEnhance.Contrast(img).enhance(factor)


def adjust_saturation(img: Image.Image, factor: float) -> Image.Image:
    """Blend with the grey-scale image by ``factor`` (1: unchanged)."""
    return ImageEnhance.Color(img).enhance(factor)


def adjust_hue(img: Image.Image, factor: float) -> Image.Image:
    """Rotate the 8-bit hue channel by ``int(255 * factor)`` (``factor`` in [-0.5, 0.5])."""
    if not -0.5 <= factor <= 0.5:
        raise ValueError(f'hue factor must be in [-0.5, 0.5], got {factor}')
    h, s, v = img.convert('HSV').split()
    shift = int(factor * 255) % 256  # truncation toward zero, as np.uint8(factor * 255)
    h = Image.fromarray(((np.asarray(h, dtype=np.uint16) + shift) % 256).astype(np.uint8))
    return Image.merge('HSV', (h, s, v)).convert('RGB')


#: The adjustments in torchvision's order (brightness, contrast, saturation, hue).
ADJUSTMENTS: Tuple[Callable[[Image.Image, float], Image.Image], ...] = (
    adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


@TRANSFORMS.register_module()
class ColorJitter(BaseTransform):
    """Random brightness, contrast, saturation and hue (torchvision ``ColorJitter``).

    Required keys: ``img`` (uint8, ``(H, W, 3)``). Modified keys: ``img``.

    Args:
        brightness (float): Brightness factor range ``[max(0, 1 - b), 1 + b]``. Default: 0.
        contrast (float): Contrast factor range, likewise. Default: 0.
        saturation (float): Saturation factor range, likewise. Default: 0.
        hue (float): Hue shift range ``[-hue, hue]`` (fraction of the hue circle, at most 0.5).
            Default: 0.
        channel_order (str): Channel order of ``img``: ``'bgr'`` (mmcv's
            ``LoadImageFromFile``) or ``'rgb'``. Default: 'bgr'.
    """

    def __init__(self,
                 brightness: float = 0.,
                 contrast: float = 0.,
                 saturation: float = 0.,
                 hue: float = 0.,
                 channel_order: str = 'bgr') -> None:
        for name, value in (('brightness', brightness), ('contrast', contrast),
                            ('saturation', saturation)):
            if value < 0:
                raise ValueError(f'{name} must be >= 0, got {value}')
        if not 0 <= hue <= 0.5:
            raise ValueError(f'hue must be in [0, 0.5], got {hue}')
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        self.brightness, self.contrast, self.saturation, self.hue = (brightness, contrast,
                                                                     saturation, hue)
        self.channel_order = channel_order
        self.ranges: List[Optional[Tuple[float, float]]] = [
            (max(0., 1 - v), 1 + v) if v > 0 else None
            for v in (brightness, contrast, saturation)
        ] + [(-hue, hue) if hue > 0 else None]

    @cache_randomness
    def sample(self) -> Tuple[np.ndarray, List[Optional[float]]]:
        """Random order of the four adjustments and their factors (None: not applied)."""
        order = np.random.permutation(4)
        factors = [None if r is None else float(np.random.uniform(*r)) for r in self.ranges]
        return order, factors

    @staticmethod
    def apply(img: np.ndarray, order, factors, channel_order: str = 'bgr') -> np.ndarray:
        """Apply the adjustments ``order`` with ``factors`` to a uint8 ``(H, W, 3)`` image."""
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError('ColorJitter needs a uint8 (H, W, 3) image, got '
                             f'{img.dtype} {img.shape}: put it right after loading / resizing, '
                             'before any normalisation')
        rgb = img[..., ::-1] if channel_order == 'bgr' else img
        pil = Image.fromarray(np.ascontiguousarray(rgb))
        for i in order:
            if factors[i] is not None:
                pil = ADJUSTMENTS[i](pil, factors[i])
        out = np.asarray(pil)
        return np.ascontiguousarray(out[..., ::-1] if channel_order == 'bgr' else out)

    def transform(self, results: dict) -> dict:
        """Jitter ``results['img']``."""
        order, factors = self.sample()
        results['img'] = self.apply(results['img'], order, factors, self.channel_order)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(brightness={self.brightness}, '
                f'contrast={self.contrast}, saturation={self.saturation}, hue={self.hue}, '
                f'channel_order={self.channel_order!r})')
