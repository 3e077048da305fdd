# Copyright (c) mmaffseg contributors. All rights reserved.
"""Height positional encoding of HANet: one vector per vertical position of the image.

Choi, Kim & Choo, "Cars Can't Fly up in the Sky: Improving Urban-Scene Segmentation via
Height-driven Attention Networks", CVPR 2020.

HANet splits the image into ``128 // pos_rfactor`` horizontal bands (16 for the default
``pos_rfactor = 8``) and adds a vector that says which band a pooled row comes from. The
vectors are a fixed sinusoid table shifted by +1 (frozen, as in the official code), or a
learned table initialised to zeros.

Positions come in as *row bins*: each input pixel row carries the index of the band of
height 1/128 of the original image it comes from (``row_bin = original_row * 128 //
original_height``, i.e. ``original_row // 8`` for a 1024-row Cityscapes frame; see
:mod:`mmaffseg.ops.row_positions`).
"""
import warnings
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...ops.row_positions import NUM_ROW_BINS


def sinusoid_table(num_positions: int, dim: int) -> Tensor:
    """HANet's sinusoid table, without the +1 shift.

    ``T[p, j] = sin(p / c ** (2 * (j // 2) / dim))`` for even ``j`` and ``cos`` of the same
    angle for odd ``j``. The cycle ``c`` is 10 when ``dim > 50`` and 100 otherwise (the
    official code's choice for short sequences; not the usual 10000).

    Args:
        num_positions (int): Number of rows of the table.
        dim (int): Vector length.

    Returns:
        Tensor: The table, shape ``(num_positions, dim)``, float32.
    """
    cycle = 10.0 if dim > 50 else 100.0
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    exponent = 2 * torch.div(torch.arange(dim), 2, rounding_mode='floor') / dim
    angle = pos / torch.pow(cycle, exponent.to(torch.float64))[None]
    table = torch.where(torch.arange(dim)[None] % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float()


class HeightPositionalEncoding(nn.Module):
    """Adds a height-band vector to each entry of a pooled ``(B, C, L)`` row sequence.

    The band of entry ``l`` is read from the row bins of the input image as the official code
    does: bins are divided by ``pos_rfactor``, then sampled with nearest interpolation at
    ``L`` evenly spaced rows. In training, integer noise ``clamp(floor(N(0, pos_noise)),
    -16 // pos_rfactor, 16 // pos_rfactor)`` is added to each band index, which is then clamped
    to the table.

    Args:
        dim (int): Channels ``C`` of the sequence.
        pos_rfactor (int): Rows of the 128-bin frame per band; the table has
            ``128 // pos_rfactor + 1`` rows. Default: 8.
        pos_noise (float): Std of the training-time band noise; 0 turns it off. Default: 0.
        learnable (bool): Learned table (zero-initialised) instead of the frozen
            sinusoid + 1. Default: False.
    """

    _warned_relative = False

    def __init__(self,
                 dim: int,
                 pos_rfactor: int = 8,
                 pos_noise: float = 0.0,
                 learnable: bool = False) -> None:
        super().__init__()
        if not (isinstance(pos_rfactor, int) and 1 <= pos_rfactor <= NUM_ROW_BINS):
            raise ValueError(f'pos_rfactor must be an int in [1, {NUM_ROW_BINS}] (rows of the '
                             f'{NUM_ROW_BINS}-bin frame per band), got {pos_rfactor!r}')
        if pos_noise < 0:
            raise ValueError(f'pos_noise is a standard deviation and must be >= 0, got '
                             f'{pos_noise}')
        self.dim = dim
        self.pos_rfactor = pos_rfactor
        self.num_bands = NUM_ROW_BINS // pos_rfactor
        self.pos_noise = float(pos_noise)
        self.noise_clamp = 16 // pos_rfactor
        if learnable:
            self.table = nn.Parameter(torch.zeros(self.num_bands + 1, dim))
        else:
            # frozen, but saved so that converted official checkpoints carry their table
            self.register_buffer('table', sinusoid_table(self.num_bands + 1, dim) + 1)

    def band_index(self, row_positions: Optional[Tensor], length: int, batch: int,
                   device: torch.device) -> Tensor:
        """Band index of each of ``length`` pooled rows.

        Args:
            row_positions (Tensor | None): Row bins (0..127) of each input row, shape
                ``(B, H)``. ``None`` falls back to rows relative to the input (band ``l`` of
                ``length`` evenly spaced bands), with a one-time warning.
            length (int): Length ``L`` of the pooled sequence.
            batch (int): Batch size ``B`` (used by the fallback).
            device (torch.device): Device of the result.

        Returns:
            Tensor: Long tensor ``(B, L)`` of rows of the table.
        """
        if row_positions is None:
            if not HeightPositionalEncoding._warned_relative:
                HeightPositionalEncoding._warned_relative = True
                warnings.warn(
                    'HANet got no absolute row positions and uses rows relative to the '
                    'network input instead. For the official behaviour record crop offsets '
                    'with `RandomCropWithOffset`, add "crop_offset" to PackSegInputs '
                    'meta_keys and use the `HANetEncoderDecoder` segmentor.', stacklevel=2)
            index = torch.arange(length, device=device) * self.num_bands // length
            index = index[None].expand(batch, length)
        else:
            bands = torch.div(row_positions.long(), self.pos_rfactor, rounding_mode='floor')
            # nearest sampling at floor(l * H / L), exactly as F.interpolate does it
            index = F.interpolate(bands[:, None].float(), size=length, mode='nearest')
            index = index[:, 0].long().to(device)
        if self.training and self.pos_noise > 0:
            noise = torch.floor(torch.randn(index.shape, device=device) * self.pos_noise)
            noise = noise.long().clamp(-self.noise_clamp, self.noise_clamp)
            index = (index + noise).clamp(0, self.num_bands)
        return index

    def forward(self, x: Tensor, row_positions: Optional[Tensor] = None) -> Tensor:
        """Add the band vectors.

        Args:
            x (Tensor): Pooled rows, shape ``(B, C, L)``.
            row_positions (Tensor | None): Row bins of the input rows, shape ``(B, H)``.

        Returns:
            Tensor: ``x`` plus the encoding, shape ``(B, C, L)``.
        """
        index = self.band_index(row_positions, x.shape[2], x.shape[0], x.device)
        return x + self.table[index].transpose(1, 2)  # (B, L, C) -> (B, C, L)

    def extra_repr(self) -> str:
        return (f'dim={self.dim}, bands={self.num_bands}, pos_rfactor={self.pos_rfactor}, '
                f'pos_noise={self.pos_noise}, learnable={isinstance(self.table, nn.Parameter)}')


__all__ = ['HeightPositionalEncoding', 'sinusoid_table']
