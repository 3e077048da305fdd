# Copyright (c) mmaffseg contributors. All rights reserved.
"""Absolute row positions of the network input, recovered from the sample metainfo.

HANet (Choi et al., "Cars Can't Fly up in the Sky: Improving Urban-Scene Segmentation via
Height-driven Attention Networks", CVPR 2020) encodes where a row lies in the *original*
image, not in the training crop. The official data loader carries a map of
``original_row // 8`` (1024-row Cityscapes frames, so 128 bins) through resize and crop.

mmaffseg recovers the same numbers from the metainfo instead of carrying a map:

- ``ori_shape`` (from ``LoadImageFromFile``) gives the original height,
- ``scale_factor`` (from ``Resize``/``RandomResize``) the vertical scale,
- ``crop_offset`` (from :class:`~mmaffseg.datasets.RandomCropWithOffset`) where the crop
  starts in the resized image,
- ``flip``/``flip_direction`` (from ``RandomFlip``) a vertical flip applied after the crop,
- ``row_positions`` (set by :class:`~mmaffseg.models.segmentors.HANetEncoderDecoder` for each
  sliding window) overrides all of the above.

Input row ``y`` maps to the original row ``floor((y + crop_y) / scale_h)`` (what a
nearest-neighbour resize of the official map gives) and to the bin
``floor(original_row * 128 / ori_h)`` clamped to 0..127. Rows below the image (batch padding)
get the last bin. When the metainfo shows a crop (``img_shape`` smaller than the resized
image) but no ``crop_offset``, the position cannot be known and ``None`` is returned, so that
the caller falls back to crop-relative rows.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# bins of the official position map: rows of a 1024-row frame // 8
NUM_ROW_BINS = 128


def row_positions_from_meta(meta: dict, height: int) -> Optional[Tensor]:
    """Row bins (0..127) of the ``height`` input rows of one sample.

    Args:
        meta (dict): The sample's metainfo (see the module docstring for the keys used).
        height (int): Number of input rows (the padded network input height).

    Returns:
        Tensor | None: Long tensor of shape ``(height,)`` on the CPU, or ``None`` when the
        metainfo does not tell where the input lies in the original image.
    """
    if meta.get('row_positions') is not None:
        given = torch.as_tensor(meta['row_positions'], device='cpu').long()
        if given.numel() == height:
            return given.reshape(-1)  # not reshape(height): keeps an exported height dynamic
        return F.interpolate(given.reshape(1, 1, -1).float(), size=height,
                             mode='nearest').reshape(height).long()
    if 'ori_shape' not in meta or 'img_shape' not in meta:
        return None
    ori_h = float(meta['ori_shape'][0])
    img_h = int(meta['img_shape'][0])
    scale_factor = meta.get('scale_factor')
    scale_h = 1.0 if scale_factor is None else float(scale_factor[1])  # (w_scale, h_scale)
    if meta.get('crop_offset') is not None:
        top = int(meta['crop_offset'][0])
    elif abs(img_h - ori_h * scale_h) > 0.5:
        return None  # cropped, but the crop offset was not recorded
    else:
        top = 0
    rows = torch.arange(height, dtype=torch.float64, device='cpu')
    if meta.get('flip') and meta.get('flip_direction') == 'vertical':
        rows = img_h - 1 - rows
    original_rows = torch.floor((rows + top) / scale_h)
    bins = torch.floor(original_rows * NUM_ROW_BINS / ori_h)
    return bins.clamp(0, NUM_ROW_BINS - 1).long()


def batch_row_positions(batch_img_metas: Sequence[dict],
                        height: Optional[int] = None,
                        device: Optional[torch.device] = None) -> Optional[Tensor]:
    """Row bins of a batch: :func:`row_positions_from_meta` for every sample.

    Args:
        batch_img_metas (Sequence[dict]): Metainfo of each sample.
        height (int, optional): Input height. Defaults to the first sample's ``pad_shape``
            (or ``img_shape``) height, which is the network input height in mmseg.
        device (torch.device, optional): Device of the result.

    Returns:
        Tensor | None: Long tensor ``(B, height)``, or ``None`` if any sample's position is
        unknown.
    """
    if not batch_img_metas:
        return None
    if height is None:
        first = batch_img_metas[0]
        shape = first.get('pad_shape', first.get('img_shape'))
        if shape is None:
            return None
        height = int(shape[0])
    rows: List[Tensor] = []
    for meta in batch_img_metas:
        positions = row_positions_from_meta(meta, height)
        if positions is None:
            return None
        rows.append(positions)
    return torch.stack(rows).to(device)
