# Copyright (c) mmaffseg contributors. All rights reserved.
"""DSRL's feature affinity (FA) loss written out naively, for the loss and segmentor tests.

Wang et al., CVPR 2020, Eq. (FA): subsample both maps, L2-normalise each position's vector,
``S_ij = <F_i, F_j>`` per map, ``L = 1 / N^2 * sum_ij |S_seg_ij - S_sr_ij|``, here restricted
to the valid (unpadded) cells of each sample. Plain Python loops over cells, pixels and pairs,
float64; nothing from mmaffseg.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch


def _cell_vectors(feats: torch.Tensor, k: int, mode: str, valid_hw: Tuple[int, int]) -> List:
    """Feature vectors (lists of floats) of the cells holding at least one valid pixel."""
    channels, height, width = feats.shape
    h, w = valid_hw
    vectors = []
    for r in range(height // k):
        for c in range(width // k):
            if r * k >= h or c * k >= w:
                continue  # the cell holds no valid pixel: it does not exist for the loss
            if mode == 'avg':  # mean over the cell's valid pixels
                pixels = [(y, x) for y in range(r * k, min((r + 1) * k, h))
                          for x in range(c * k, min((c + 1) * k, w))]
                vectors.append([sum(float(feats[ch, y, x]) for y, x in pixels) / len(pixels)
                                for ch in range(channels)])
            else:  # the cell's top-left pixel
                vectors.append([float(feats[ch, r * k, c * k]) for ch in range(channels)])
    return vectors


def _normalised(vectors: List) -> List:
    out = []
    for v in vectors:
        norm = math.sqrt(sum(a * a for a in v))
        out.append([a / norm for a in v])
    return out


def naive_fa(seg: torch.Tensor, sr: torch.Tensor, k: int, mode: str = 'avg',
             img_shapes: Optional[Sequence[Tuple[int, int]]] = None) -> torch.Tensor:
    """Per-sample FA loss over the valid cells of each sample.

    Args:
        seg (Tensor): (B, C1, H, W) segmentation-side features.
        sr (Tensor): (B, C2, H, W) SISR-side features.
        k (int): Subsampling stride (1 / subsample_factor).
        mode (str): 'avg' or 'stride'.
        img_shapes (list[tuple], optional): Unpadded (h, w) of each sample, at the top-left of
            the map. None: the whole map is valid.

    Returns:
        Tensor: (B,) float64.
    """
    values = []
    for b in range(seg.shape[0]):
        valid_hw = tuple(img_shapes[b]) if img_shapes is not None else tuple(seg.shape[2:])
        maps = [_normalised(_cell_vectors(feats[b].double(), k, mode, valid_hw))
                for feats in (seg, sr)]
        n = len(maps[0])
        total = 0.0
        for i in range(n):
            for j in range(n):
                s_seg = sum(a * b for a, b in zip(maps[0][i], maps[0][j]))
                s_sr = sum(a * b for a, b in zip(maps[1][i], maps[1][j]))
                total += abs(s_seg - s_sr)
        values.append(total / n**2)
    return torch.tensor(values, dtype=torch.float64)
