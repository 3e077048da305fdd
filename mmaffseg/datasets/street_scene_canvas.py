# Copyright (c) mmaffseg contributors. All rights reserved.
"""The canvas the street-scene generator paints on: image, label and instance layers together.

Textures are shaded by noise fields shared by the whole scene (fine, mid and coarse), so that
surfaces of one class are not flat colours; :class:`Scene` is what a rendered scene holds.
Used by :class:`~mmaffseg.datasets.StreetSceneGenerator`.
"""
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np

from .cityscapes_labels import CITYSCAPES_CLASSES, IGNORE_INDEX

TRAIN_ID_BY_NAME = {c.name: c.train_id for c in CITYSCAPES_CLASSES}


class Scene(NamedTuple):
    """One rendered scene.

    Attributes:
        image (np.ndarray): (H, W, 3) uint8, RGB.
        label_train_ids (np.ndarray): (H, W) uint8 Cityscapes trainIds, 255 = void.
        label_ids (np.ndarray): (H, W) uint8 Cityscapes labelIds, 0 = void.
        instance_ids (np.ndarray): (H, W) int32 in Cityscapes' instanceIds encoding.
    """
    image: np.ndarray
    label_train_ids: np.ndarray
    label_ids: np.ndarray
    instance_ids: np.ndarray


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Zero-mean noise of unit-ish amplitude correlated over ``cell`` pixels."""
    small = rng.standard_normal((max(2, h // cell + 2), max(2, w // cell + 2)))
    return cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


class Canvas:
    """Image, label and instance layers painted together, shape by shape."""

    def __init__(self, rng: np.random.Generator, h: int, w: int):
        self.rng, self.h, self.w = rng, h, w
        self.image = np.zeros((h, w, 3), np.float32)
        self.label = np.full((h, w), IGNORE_INDEX, np.uint8)
        self.instance = np.zeros((h, w), np.int32)  # 0 = no instance, else 1-based per class
        self.next_instance = {}
        # Noise fields shared by every texture of this scene.
        self.fine = rng.standard_normal((h, w)).astype(np.float32)
        self.mid = smooth_noise(rng, h, w, 6)
        self.coarse = smooth_noise(rng, h, w, 40)

    def new_instance(self, cls: str) -> int:
        self.next_instance[cls] = self.next_instance.get(cls, 0) + 1
        return self.next_instance[cls]

    def mask(self) -> np.ndarray:
        return np.zeros((self.h, self.w), np.uint8)

    def paint(self, mask: np.ndarray, cls: str, colour, texture: float = 0.12,
              pattern: Optional[np.ndarray] = None, instance: int = 0) -> None:
        """Give the pixels of ``mask`` the class ``cls`` and a textured colour."""
        m = mask.astype(bool)
        if not m.any():
            return
        shade = 1 + texture * (0.5 * self.mid[m] + 0.3 * self.coarse[m] + 0.2 * self.fine[m])
        if pattern is not None:
            shade = shade * pattern[m]
        self.image[m] = np.asarray(colour, np.float32)[None] * shade[:, None]
        self.label[m] = TRAIN_ID_BY_NAME[cls]
        self.instance[m] = instance


def jitter(rng: np.random.Generator, colour, amount: float = 25) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def grid_pattern(h: int, w: int, x0: int, y0: int, cell: Tuple[int, int], frac: float,
                  dark: float) -> np.ndarray:
    """Multiplicative pattern: rectangles (windows, bricks) of relative brightness ``dark``."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = cell
    inside = (((yy - y0) % cy) < cy * frac) & (((xx - x0) % cx) < cx * frac)
    return np.where(inside, dark, 1.0).astype(np.float32)
