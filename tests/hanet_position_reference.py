# Copyright (c) mmaffseg contributors. All rights reserved.
"""HANet's training-time position map, carried the way the official data loader carries it.

Written from the official code (shachoi/HANet, ``datasets/cityscapes.py`` and
``transforms/joint_transforms.py``), in our own words, for the position tests:

- the dataset builds an 8-bit PIL image of the 1024-row frame whose every row holds
  ``row // 8`` (0..127);
- ``RandomSizeAndCrop`` scales the frame by ``scale_amt`` to ``int(1024 * scale_amt)`` rows
  (Python's truncation) with PIL's ``NEAREST`` filter;
- its ``RandomCrop`` (``crop_nopad=False``, the training default) pads a map that is shorter
  than the crop by ``(crop - h) // 2 + 1`` rows above and below, filled with 128, then cuts
  ``crop`` rows starting at ``y1`` (in the padded map). (Columns are padded likewise when the
  width is short; a scaled 2048-column frame is never narrower than the crops used here.)

Only the rows matter to HANet (the module reads column 0), so the map here is two columns wide;
PIL's nearest resize picks rows independently of the width. Nothing here comes from mmaffseg.
"""
from typing import Tuple

import numpy as np
from PIL import Image, ImageOps

FRAME_ROWS = 1024
FRAME_COLS = 2048
PAD_VALUE = 128  # the official IGNORE_POS


def official_resized_rows(scale_amt: float) -> int:
    """Rows of the frame after the official random scaling (``int``, not ``round``)."""
    return int(FRAME_ROWS * scale_amt)


def official_padding(resized_rows: int, crop_rows: int) -> int:
    """Rows the official ``RandomCrop`` adds above (and below) a map shorter than the crop."""
    return (crop_rows - resized_rows) // 2 + 1 if crop_rows > resized_rows else 0


def official_position_column(resized_rows: int, crop_rows: int, y1: int) -> np.ndarray:
    """The official position map's column 0 after resize, pad and crop.

    Args:
        resized_rows (int): Rows after the random scaling.
        crop_rows (int): Crop height.
        y1 (int): First cropped row of the (padded) map.

    Returns:
        np.ndarray: int64, shape ``(crop_rows,)``.
    """
    frame = np.repeat((np.arange(FRAME_ROWS) // 8).astype(np.uint8)[:, None], 2, axis=1)
    pos = Image.fromarray(frame, mode='L')
    pos = pos.resize((2, resized_rows), Image.NEAREST)
    pad = official_padding(resized_rows, crop_rows)
    if pad:  # (left, top, right, bottom); the frame's width never needs padding here
        pos = ImageOps.expand(pos, border=(0, pad, 0, pad), fill=PAD_VALUE)
    width = pos.size[0]
    pos = pos.crop((0, y1, width, y1 + crop_rows))
    return np.asarray(pos)[:, 0].astype(np.int64)


def official_draw(rng: np.random.Generator, crop_rows: int,
                  scale_range: Tuple[float, float] = (0.5, 2.0)) -> Tuple[int, int, int]:
    """One random (resized rows, pad, y1) as the official transform draws them.

    Args:
        rng (np.random.Generator): Local generator.
        crop_rows (int): Crop height.
        scale_range (tuple[float, float]): ``scale_min``, ``scale_max``.

    Returns:
        tuple[int, int, int]: Resized rows, rows padded above, first cropped row.
    """
    resized = official_resized_rows(rng.uniform(*scale_range))
    pad = official_padding(resized, crop_rows)
    padded = resized + 2 * pad
    y1 = 0 if padded == crop_rows else int(rng.integers(0, padded - crop_rows + 1))
    return resized, pad, y1
