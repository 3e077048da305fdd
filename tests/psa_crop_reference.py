# Copyright (c) mmaffseg contributors. All rights reserved.
"""PSA's training crop and normalisation, written from the official code for the crop tests.

jiwoon-ahn/psa, in our own words:

- ``network/resnet38d.Normalize``: an RGB uint8 image becomes float32
  ``(x / 255 - mean) / std`` per channel, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225);
- ``tool/imutils.RandomCrop(cropsize)``: a float32 zero canvas of ``cropsize x cropsize``; along
  each axis with ``space = size - cropsize``, a random integer ``d`` in ``[0, |space|]`` is the
  image's start when ``space > 0`` (the image is cut) and the canvas start otherwise (the image
  is pasted whole along that axis). ``train_cls.py`` normalises first and crops after;
  ``train_aff.py`` crops the image (uint8 values) stacked with its CRF score maps first and
  normalises after, and a label cell whose scores are all zero (the canvas) becomes 255.

The random integers are parameters here, so a test can give both sides the same draws.
Nothing here comes from mmaffseg.
"""
import numpy as np

OFFICIAL_MEAN = (0.485, 0.456, 0.406)
OFFICIAL_STD = (0.229, 0.224, 0.225)


def official_normalize(rgb: np.ndarray) -> np.ndarray:
    """``resnet38d.Normalize`` on an (H, W, 3) RGB array."""
    out = np.empty(rgb.shape, np.float32)
    for c in range(3):
        out[..., c] = (rgb[..., c] / 255. - OFFICIAL_MEAN[c]) / OFFICIAL_STD[c]
    return out


def official_random_crop(arr: np.ndarray, cropsize: int, h_draw: int, w_draw: int) -> np.ndarray:
    """``imutils.RandomCrop`` on an (H, W, C) array with the given random integers.

    Args:
        arr (np.ndarray): The array to crop.
        cropsize (int): Side of the square crop.
        h_draw (int): The draw of the vertical axis, in ``[0, |H - cropsize|]``.
        w_draw (int): The draw of the horizontal axis, in ``[0, |W - cropsize|]``.

    Returns:
        np.ndarray: float32 ``(cropsize, cropsize, C)``.
    """
    h, w = arr.shape[:2]
    ch, cw = min(cropsize, h), min(cropsize, w)
    if w - cropsize > 0:
        cont_left, img_left = 0, w_draw
    else:
        cont_left, img_left = w_draw, 0
    if h - cropsize > 0:
        cont_top, img_top = 0, h_draw
    else:
        cont_top, img_top = h_draw, 0
    container = np.zeros((cropsize, cropsize, arr.shape[-1]), np.float32)
    container[cont_top:cont_top + ch, cont_left:cont_left + cw] = \
        arr[img_top:img_top + ch, img_left:img_left + cw]
    return container


def official_cam_input(rgb: np.ndarray, cropsize: int, h_draw: int, w_draw: int) -> np.ndarray:
    """``train_cls.py``'s network input (after the jitter): normalise, crop, CHW."""
    return official_random_crop(official_normalize(rgb), cropsize, h_draw, w_draw).transpose(
        2, 0, 1)


def official_aff_input(rgb: np.ndarray, label: np.ndarray, cropsize: int, h_draw: int,
                       w_draw: int):
    """``train_aff.py``'s image (CHW) and label map (before the stride-8 reduction).

    The official crop runs on the image stacked with score maps; a cell of the canvas has all
    scores 0 and becomes 255. Here one score channel of ones stands for "some score > 0".
    """
    stacked = np.concatenate(
        [rgb.astype(np.float32), label[..., None].astype(np.float32),
         np.ones(label.shape + (1, ), np.float32)], axis=-1)
    cropped = official_random_crop(stacked, cropsize, h_draw, w_draw)
    img = official_normalize(cropped[..., :3]).transpose(2, 0, 1)
    out_label = cropped[..., 3].astype(np.uint8)
    out_label[cropped[..., 4] < 1e-5] = 255
    return img, out_label
