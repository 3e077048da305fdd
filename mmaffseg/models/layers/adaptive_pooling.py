# Copyright (c) mmaffseg contributors. All rights reserved.
"""Adaptive average / max pooling written as explicit bins, so it exports to ONNX at any size.

Used by HANet's width pooling (Choi et al., CVPR 2020) and by the strip and mixed pooling
modules of SPNet (Hou et al., "Strip Pooling: Rethinking Spatial Pooling for Scene Parsing",
CVPR 2020).

``F.adaptive_avg_pool2d`` gives the same numbers, but the ONNX exporters only translate it when
the output size divides the input size and the input size is static (it becomes a fixed
``AveragePool`` kernel); HANet pools the rows of any map into 16 bins and SPNet's mixed pooling
into 20 x 20 and 12 x 12 cells, so a model exported that way breaks or works at one shape only.

Here each axis is pooled with PyTorch's own bin rule, output ``i`` of ``n -> m`` covering the
input indices ``[floor(i * n / m), ceil((i + 1) * n / m))``, computed from the runtime size:

- average: a 0/1 membership matrix ``(m, n)`` multiplies the axis, then each bin is divided
  by its count (sum first, then divide, as PyTorch's kernel does);
- max: the membership matrix masks the axis and the maximum is taken over each bin (the
  gradient of a tie goes to its first element, as in PyTorch);
- ``m == 1`` is a plain mean / max over the axis and ``m == n`` leaves the axis unchanged.

Both are ordinary differentiable tensor ops (gradients equal PyTorch's) and trace into
``MatMul`` / ``ReduceMax`` graphs whose sizes follow the input's height and width.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

OutputSize = Union[int, None, Sequence[Optional[int]]]


def _output_pair(output_size: OutputSize) -> Tuple[Optional[int], Optional[int]]:
    if output_size is None or isinstance(output_size, int):
        return output_size, output_size
    if len(output_size) != 2:
        raise ValueError(f'adaptive pooling output_size must be an int or a pair (h, w), got '
                         f'{output_size!r}')
    return output_size[0], output_size[1]


def adaptive_bins(index: Tensor, out_size: int) -> Tensor:
    """Membership matrix of PyTorch's adaptive pooling bins along one axis.

    Args:
        index (Tensor): ``arange(n)`` of the input axis, long ``(n,)``. Built from the data
            (a cumulative sum of ones), so that a traced graph keeps ``n`` dynamic.
        out_size (int): Number of bins ``m``.

    Returns:
        Tensor: Bool ``(m, n)``; row ``i`` is True on ``[floor(i n / m), ceil((i + 1) n / m))``.
    """
    n = index[-1:] + 1  # (1,)
    bins = torch.arange(out_size, device=index.device)[:, None]  # (m, 1)
    start = torch.div(bins * n, out_size, rounding_mode='floor')
    end = torch.div((bins + 1) * n + out_size - 1, out_size, rounding_mode='floor')
    return (index[None] >= start) & (index[None] < end)


def _pool_axis(x: Tensor, dim: int, out_size: Optional[int], mode: str) -> Tensor:
    """Adaptive pooling of one axis (2 or 3) of ``(B, C, H, W)`` to ``out_size`` bins."""
    if out_size is None:
        return x
    if not torch.jit.is_tracing() and x.shape[dim] == out_size:
        return x  # one input row/column per bin (a traced graph must not rely on it)
    if out_size == 1:
        return x.mean(dim, keepdim=True) if mode == 'avg' else x.max(dim, keepdim=True).values
    if dim == 2:
        x = x.transpose(2, 3)  # pool the last axis
    line = x[0, 0, 0]  # (n,): only its length is used
    index = torch.ones_like(line, dtype=torch.long).cumsum(0) - 1
    member = adaptive_bins(index, out_size)  # (m, n)
    if mode == 'avg':
        weights = member.to(x.dtype)
        out = torch.matmul(x, weights.t()) / weights.sum(1)  # (B, C, *, n) @ (n, m)
    else:
        masked = torch.where(member, x[..., None, :], x.new_tensor(float('-inf')))
        # max() (not amax) sends the gradient of a tie to one element, as PyTorch's pool does
        out = masked.max(-1).values  # (B, C, *, m, n) -> (B, C, *, m)
    return out.transpose(2, 3) if dim == 2 else out


def adaptive_avg_pool2d(x: Tensor, output_size: OutputSize) -> Tensor:
    """``F.adaptive_avg_pool2d`` with the same bins, exportable at dynamic sizes.

    Args:
        x (Tensor): ``(B, C, H, W)``.
        output_size (int | tuple): ``m`` or ``(m_h, m_w)``; ``None`` keeps that axis, as in
            PyTorch.

    Returns:
        Tensor: ``(B, C, m_h, m_w)``.
    """
    out_h, out_w = _output_pair(output_size)
    return _pool_axis(_pool_axis(x, 3, out_w, 'avg'), 2, out_h, 'avg')


def adaptive_max_pool2d(x: Tensor, output_size: OutputSize) -> Tensor:
    """``F.adaptive_max_pool2d`` (values only) with the same bins, exportable at dynamic sizes.

    Args:
        x (Tensor): ``(B, C, H, W)``.
        output_size (int | tuple): ``m`` or ``(m_h, m_w)``; ``None`` keeps that axis.

    Returns:
        Tensor: ``(B, C, m_h, m_w)``.
    """
    out_h, out_w = _output_pair(output_size)
    return _pool_axis(_pool_axis(x, 3, out_w, 'max'), 2, out_h, 'max')


__all__ = ['adaptive_avg_pool2d', 'adaptive_bins', 'adaptive_max_pool2d']
