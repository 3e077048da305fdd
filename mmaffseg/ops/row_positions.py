# Copyright (c) mmaffseg contributors. All rights reserved.
"""Absolute row positions of the network input, recovered from the sample metainfo.

HANet (Choi et al., "Cars Can't Fly up in the Sky: Improving Urban-Scene Segmentation via
Height-driven Attention Networks", CVPR 2020) encodes where a row lies in the *original*
image, not in the training crop. The official data loader carries a map of
``original_row // 8`` (1024-row Cityscapes frames, so 128 bins) through resize and crop.

mmaffseg recovers the same numbers from the metainfo instead of carrying a map:

- ``ori_shape`` (from ``LoadImageFromFile``) gives the original height,
- ``scale_factor`` (from ``Resize``/``RandomResize``) the vertical scale, hence the resized
  height ``round(ori_h * scale_h)``,
- ``crop_offset`` (from :class:`~mmaffseg.datasets.RandomCropWithOffset`) where the crop
  starts in the resized image (negative when the image sits below the top of a padded canvas),
- ``flip``/``flip_direction`` (from ``RandomFlip``) a flip applied after the crop: ``vertical``
  and ``diagonal`` (both axes) reverse the rows, ``horizontal`` keeps them; any other
  direction is refused (:class:`ValueError`), since its effect on rows is unknown,
- ``row_positions`` (set by :class:`~mmaffseg.models.segmentors.HANetEncoderDecoder` for each
  sliding window) overrides all of the above.

Resized row ``r`` takes the value of the original row that PIL's ``NEAREST`` resize of the
official map reads: the centre of the output row, ``(r + 0.5) * ori_h / resized_h``, truncated,
with the position accumulated row by row in float64 as PIL does (at exact ties, e.g. 768.0, the
accumulated sum lands just below and PIL reads the row above; :func:`pil_nearest_rows`). Its bin
is ``floor(original_row * 128 / ori_h)`` (``original_row // 8`` for a 1024-row frame). Rows
outside the resized image (batch padding, a padded canvas) get :data:`PAD_ROW_BIN` = 128, the
official padding value. When the metainfo shows a crop (``img_shape`` smaller than the resized
image) but no ``crop_offset``, the position cannot be known and ``None`` is returned, so that
the caller falls back to crop-relative rows.
"""
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Bins of the official position map: rows of a 1024-row frame // 8.
NUM_ROW_BINS = 128
#: The official map's value for padded rows (the dataset pads it with 128, one past the bins).
PAD_ROW_BIN = NUM_ROW_BINS
#: ``flip_direction`` of mmcv's ``RandomFlip`` -> whether it reverses the rows.
FLIP_REVERSES_ROWS = {'horizontal': False, 'vertical': True, 'diagonal': True}


def pil_nearest_rows(src_rows: int, dst_rows: int, count: Optional[int] = None) -> np.ndarray:
    """Source row read for each output row by PIL's ``NEAREST`` resize of a column.

    PIL samples the centre of every output row: the source position of row ``r`` is
    ``0.5 * step + r * step`` with ``step = src_rows / dst_rows``, accumulated by repeated
    float64 addition and truncated. The sequential cumulative sum below adds in the same order,
    so it reproduces PIL exactly, ties included.

    Args:
        src_rows (int): Rows of the image that is resized.
        dst_rows (int): Rows after resizing.
        count (int, optional): Compute the first ``count`` output rows only. Defaults to all.

    Returns:
        np.ndarray: int64 source rows, shape ``(count,)``.
    """
    count = dst_rows if count is None else max(0, min(count, dst_rows))
    step = src_rows / dst_rows
    increments = np.full(count, step, dtype=np.float64)
    if count:
        increments[0] = 0.5 * step
    return np.minimum(np.cumsum(increments).astype(np.int64), src_rows - 1)


def row_positions_from_meta(meta: dict, height: int) -> Optional[Tensor]:
    """Row bins (0..127, :data:`PAD_ROW_BIN` outside the image) of the ``height`` input rows.

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
    ori_h = int(meta['ori_shape'][0])
    img_h = int(meta['img_shape'][0])
    scale_factor = meta.get('scale_factor')
    scale_h = 1.0 if scale_factor is None else float(scale_factor[1])  # (w_scale, h_scale)
    resized_h = max(1, round(ori_h * scale_h))
    if meta.get('crop_offset') is not None:
        top = int(meta['crop_offset'][0])
    elif abs(img_h - ori_h * scale_h) > 0.5:
        return None  # cropped, but the crop offset was not recorded
    else:
        top = 0
    rows = torch.arange(height, dtype=torch.long, device='cpu')
    if meta.get('flip'):
        direction = meta.get('flip_direction')
        if direction not in FLIP_REVERSES_ROWS:
            raise ValueError(f'HANet row positions: unknown flip_direction {direction!r} in the '
                             f'sample metainfo; known: {sorted(FLIP_REVERSES_ROWS)}')
        if FLIP_REVERSES_ROWS[direction]:
            rows = img_h - 1 - rows
    resized_rows = rows + top
    inside = (resized_rows >= 0) & (resized_rows < resized_h)
    last = int(resized_rows[inside].max()) + 1 if bool(inside.any()) else 0
    original_rows = torch.from_numpy(pil_nearest_rows(ori_h, resized_h, last))
    bins = torch.div(original_rows * NUM_ROW_BINS, ori_h, rounding_mode='floor')
    bins = torch.cat([bins, bins.new_zeros(1)])  # a harmless index for the outside rows
    index = torch.where(inside, resized_rows, resized_rows.new_full((), last))
    return torch.where(inside, bins[index], bins.new_full((), PAD_ROW_BIN))


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
