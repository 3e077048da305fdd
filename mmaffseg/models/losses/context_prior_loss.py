# Copyright (c) mmaffseg contributors. All rights reserved.
"""Affinity loss of the Context Prior, computed without the N x N ideal affinity map.

Paper: Changqian Yu, Jingbo Wang, Changxin Gao, Gang Yu, Chunhua Shen, Nong Sang,
"Context Prior for Scene Segmentation", CVPR 2020.

The context prior map ``P`` (B, N, N) predicts, for every pair of the N = h * w cells of the
prior grid, whether the two cells have the same class. Its target is the ideal affinity map
``A = L L^T`` where ``L`` (B, N, K) is the one-hot label of the cells. The loss is::

    unary   = mean_{b,i,j} BCE(P_ij, A_ij)
    recall  = BCE(sum P * A' / sum A', 1)           one ratio per unit (row or column)
    spec    = BCE(sum (1 - P)(1 - A) / sum (1 - A), 1)
    prec    = BCE(sum P * A' / sum P, 1)
    loss    = loss_weight * (unary + mean(recall) + mean(spec) + mean(prec))

with ``BCE(x, 1) = -max(log x, -100)`` (PyTorch's clamp) and zero denominators replaced by 1.

Two forms:

- ``'official'`` (default, what the official code computes and the golden fixtures hold): the
  sums run over the last dimension (one ratio per row ``i``) and ``A' = A`` with its diagonal
  zeroed (only in the recall and precision numerators and the recall denominator).
- ``'paper'``: the sums run over ``i`` (one ratio per column ``j``, as the paper writes it)
  and ``A' = A``.

Labels are compared for equality only: the ignore value (255) is a class like any other, as in
the official code, so ignore cells have affinity 1 with each other and 0 with the rest.

``A`` is never built. The rows of ``P`` are walked in blocks of consecutive cells; on a block
``A`` is a comparison of the block's labels with all labels (a boolean block, never a float
N x N map), so every sum is a masked row or column sum and the gradient of the unary term is
``(P - A) / max(P (1 - P), 1e-12)``, PyTorch's BCE derivative. The class size of every cell
(the recall and specificity denominators) comes from one sort of the labels and a binary search,
so forward and backward do no data-dependent host synchronisation: the block loop depends only on
the shapes. Besides ``P`` and its gradient the memory is O(B * N) plus one block.
:func:`context_prior_loss_materialised` is the direct O(N^2) version that tests and
``tools/analysis_tools/benchmark_cp_loss.py`` compare against.

Mixed precision: the loss runs in float32 with autocast off whatever the caller's precision
(:func:`~mmaffseg.ops.precision.float32_math`; the autograd Function is also declared
with ``torch.amp.custom_fwd(cast_inputs=torch.float32)``), since half-precision logs and the
1e-12-guarded BCE derivative overflow; :class:`~mmaffseg.models.decode_heads.CPHead` computes
the prior map's sigmoid in float32 for the same reason.
"""
from typing import Iterator, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor
from torch.amp import custom_bwd, custom_fwd

from ...ops.precision import float32_math
from ..utils.counting import count_occurrences

FORMS = ('official', 'paper')
_LOG_CLAMP = -100.0  # PyTorch's binary_cross_entropy clamps both logs at -100.
_BCE_EPS = 1e-12  # ... and divides by max(x * (1 - x), 1e-12) in its backward.


def affinity_one_hot(label: Tensor) -> Tensor:
    """One-hot code ``L`` of the prior-grid labels over the values present in the batch.

    Args:
        label (Tensor): (B, N) or (B, h, w) integer labels on the prior grid. The ignore value
            is treated as one more class.

    Returns:
        Tensor: (B, N, K) float32 one-hot, K = number of distinct values in ``label``.
    """
    label = label.reshape(label.shape[0], -1)
    values, inverse = torch.unique(label, return_inverse=True)
    return F.one_hot(inverse, values.numel()).float()


def _check_inputs(prior_map: Tensor, label: Tensor, form: str) -> None:
    if form not in FORMS:
        raise ValueError(f'form must be one of {FORMS}, got {form!r}.')
    if prior_map.dim() != 3 or prior_map.shape[1] != prior_map.shape[2]:
        raise ValueError('prior_map must be (B, N, N) with N the number of prior-grid cells, '
                         f'got shape {tuple(prior_map.shape)}.')
    if label.shape[:2] != prior_map.shape[:2]:
        raise ValueError(f'labels give {tuple(label.shape[:2])} (B, N) but prior_map is '
                         f'{tuple(prior_map.shape)}: resize the labels to the prior grid '
                         '(prior_size) first.')


def _neg_log(x: Tensor) -> Tensor:
    """BCE(x, 1) as PyTorch computes it: -max(log x, -100)."""
    return -torch.log(x).clamp(min=_LOG_CLAMP)


def _bce_one_grad(x: Tensor) -> Tensor:
    """d BCE(x, 1) / dx with PyTorch's formula (x - 1) / max(x (1 - x), 1e-12)."""
    return (x - 1) / ((1 - x) * x).clamp(min=_BCE_EPS)


def _row_blocks(num_cells: int, block_rows: int) -> Iterator[Tuple[int, int]]:
    """(start, stop) of consecutive row blocks; depends on shapes only."""
    for start in range(0, num_cells, block_rows):
        yield start, min(start + block_rows, num_cells)


def _affinity_block(label: Tensor, start: int, stop: int) -> Tensor:
    """Rows ``start:stop`` of the ideal affinity as booleans, (B, nb, N)."""
    return label[:, start:stop, None] == label[:, None, :]


class _ContextPriorLoss(torch.autograd.Function):
    """Factorised affinity loss; forward and backward walk over blocks of rows of ``P``."""

    @staticmethod
    @custom_fwd(device_type='cuda', cast_inputs=torch.float32)
    def forward(ctx, prior_map: Tensor, label: Tensor, form: str, block_elems: int) -> Tensor:
        batch, num_cells = prior_map.shape[:2]
        per_row = form == 'official'  # official: one ratio per row; paper: per column
        block_rows = max(1, block_elems // (batch * num_cells))
        unary = prior_map.new_zeros((), dtype=torch.float64)  # sum of log P or log(1 - P)
        # per sample and unit u (row, or column for the paper form), shape (B, N):
        total = prior_map.new_zeros(batch, num_cells)  # sum P
        num = torch.zeros_like(total)  # sum P A'
        spec_num = torch.zeros_like(total)  # sum (1 - P)(1 - A)
        for start, stop in _row_blocks(num_cells, block_rows):
            same = _affinity_block(label, start, stop)  # A on these rows, (B, nb, N)
            Pb = prior_map[:, start:stop]
            Qb = 1 - Pb
            # BCE(P, A) with A in {0, 1} is -max(log(A ? P : 1 - P), -100)
            picked = torch.where(same, Pb, Qb)
            unary += picked.log_().clamp_(min=_LOG_CLAMP).sum().double()
            del picked
            hit = Pb.masked_fill(~same, 0)  # P A
            miss = Qb.masked_fill_(same, 0)  # (1 - P)(1 - A)
            if per_row:
                total[:, start:stop] = Pb.sum(2)
                spec_num[:, start:stop] = miss.sum(2)
                # A' = A with the diagonal zeroed (set in the product, so no cancellation)
                hit.diagonal(offset=start, dim1=1, dim2=2).zero_()
                num[:, start:stop] = hit.sum(2)
            else:
                total += Pb.sum(1)
                num += hit.sum(1)
                spec_num += miss.sum(1)
            del hit, miss, Qb
        n_same = count_occurrences(label, label).to(total.dtype)  # size of each cell's class
        rec_den = n_same - 1 if per_row else n_same
        spec_den = num_cells - n_same
        rec_den, spec_den, prec_den = (torch.where(d > 0, d, torch.ones_like(d))
                                       for d in (rec_den, spec_den, total))
        recall, spec, prec = num / rec_den, spec_num / spec_den, num / prec_den
        global_term = (_neg_log(recall).sum(dtype=torch.float64)
                       + _neg_log(spec).sum(dtype=torch.float64)
                       + _neg_log(prec).sum(dtype=torch.float64))
        # d(loss)/dP_ij = alpha_u A'_ij + beta_u (1 - A_ij) + gamma_u, u the row/column
        d_prec = _bce_one_grad(prec)
        alpha = _bce_one_grad(recall) / rec_den + d_prec / prec_den
        beta = -_bce_one_grad(spec) / spec_den
        gamma = torch.where(total > 0, -d_prec * num / prec_den**2, torch.zeros_like(num))
        ctx.save_for_backward(prior_map, label, torch.stack([alpha, beta, gamma]))
        ctx.form, ctx.block_rows = form, block_rows
        loss = (-unary / (batch * num_cells**2) + global_term / (batch * num_cells))
        return loss.to(prior_map.dtype)

    @staticmethod
    @custom_bwd(device_type='cuda')
    def backward(ctx, grad_out: Tensor):
        prior_map, label, coeffs = ctx.saved_tensors
        batch, num_cells = prior_map.shape[:2]
        per_row = ctx.form == 'official'
        grad_out = grad_out.to(prior_map.dtype)  # a 0-d tensor: no host synchronisation
        c_unary = grad_out / (batch * num_cells**2)
        alpha, beta, gamma = coeffs * (grad_out / (batch * num_cells))  # each (B, N)
        on_same, on_diff = alpha + gamma, beta + gamma
        grad = torch.empty_like(prior_map)
        for start, stop in _row_blocks(num_cells, ctx.block_rows):
            same = _affinity_block(label, start, stop)
            # alpha_u where A_ij = 1, beta_u where A_ij = 0, selected rather than mixed
            # arithmetically: a saturated ratio makes alpha or beta ~1e12 and it must
            # not leak into entries whose derivative is exactly zero.
            if per_row:  # coefficients of the block's rows, broadcast along j
                coef = torch.where(same, on_same[:, start:stop, None],
                                   on_diff[:, start:stop, None])
                # diagonal: A'_ii = 0 and 1 - A_ii = 0
                coef.diagonal(offset=start, dim1=1, dim2=2).copy_(gamma[:, start:stop])
            else:  # coefficients of every column, broadcast along i
                coef = torch.where(same, on_same[:, None, :], on_diff[:, None, :])
            Pb = prior_map[:, start:stop]
            # unary: PyTorch's BCE derivative (P - A) / max((1 - P) P, 1e-12)
            denom = (1 - Pb).mul_(Pb).clamp_(min=_BCE_EPS)
            grad[:, start:stop] = (Pb - same.to(Pb.dtype)).div_(denom).mul_(c_unary).add_(coef)
        return grad, None, None, None


@float32_math
def context_prior_loss(prior_map: Tensor,
                       label: Tensor,
                       form: str = 'official',
                       block_elems: int = 1 << 22) -> Tensor:
    """Context prior affinity loss from ``P`` and the labels, without materialising ``A``.

    Args:
        prior_map (Tensor): (B, N, N) context prior map (probabilities).
        label (Tensor): (B, N) or (B, h, w) integer labels on the prior grid (h * w = N).
        form (str): ``'official'`` (row-wise, diagonal excluded) or ``'paper'`` (column-wise).
            Defaults to ``'official'``.
        block_elems (int): Elements of ``P`` processed at once, over the whole batch (memory
            knob; the result does not depend on it). Defaults to 2**22.

    Returns:
        Tensor: Scalar loss (without ``loss_weight``).
    """
    label = label.reshape(label.shape[0], -1).to(prior_map.device)
    _check_inputs(prior_map, label, form)
    return _ContextPriorLoss.apply(prior_map, label, form, int(block_elems))


def context_prior_loss_materialised(prior_map: Tensor,
                                    label: Tensor,
                                    form: str = 'official') -> Tensor:
    """The same loss computed directly on the materialised ``A = L L^T`` (O(N^2) memory).

    Reference for tests and benchmarks; training uses :func:`context_prior_loss`.

    Args:
        prior_map (Tensor): (B, N, N) context prior map (probabilities).
        label (Tensor): (B, N) or (B, h, w) integer labels on the prior grid.
        form (str): ``'official'`` or ``'paper'``. Defaults to ``'official'``.

    Returns:
        Tensor: Scalar loss (without ``loss_weight``).
    """
    one_hot = affinity_one_hot(label).to(prior_map)  # prior_map's device and dtype
    _check_inputs(prior_map, one_hot[..., 0], form)
    affinity = torch.bmm(one_hot, one_hot.transpose(1, 2))  # (B, N, N)
    unary = F.binary_cross_entropy(prior_map, affinity)
    dim = 2 if form == 'official' else 1
    target = affinity
    if form == 'official':
        target = affinity * (1 - torch.eye(affinity.shape[1], device=affinity.device))

    def nonzero(d: Tensor) -> Tensor:
        return torch.where(d > 0, d, torch.ones_like(d))

    num = (prior_map * target).sum(dim)
    recall = num / nonzero(target.sum(dim))
    spec = ((1 - prior_map) * (1 - affinity)).sum(dim) / nonzero((1 - affinity).sum(dim))
    prec = num / nonzero(prior_map.sum(dim))
    global_term = sum(F.binary_cross_entropy(x, torch.ones_like(x)) for x in (recall, spec, prec))
    return unary + global_term


@MODELS.register_module()
class ContextPriorLoss(nn.Module):
    """Affinity loss supervising the context prior map of :class:`CPHead`.

    Args:
        form (str): ``'official'`` (the official code: row-wise ratios, diagonal excluded from
            the recall/precision numerators) or ``'paper'`` (column-wise ratios as the paper
            writes them). Defaults to ``'official'``.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        block_elems (int): Elements of ``P`` processed at once; trades speed for memory,
            the value does not depend on it. Defaults to 2**22.
        loss_name (str): Name in the loss dict; must start with ``loss_`` for mmseg to sum
            it. Defaults to ``'loss_prior'``.
    """

    def __init__(self,
                 form: str = 'official',
                 loss_weight: float = 1.0,
                 block_elems: int = 1 << 22,
                 loss_name: str = 'loss_prior') -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f'form must be one of {FORMS}, got {form!r}.')
        self.form = form
        self.loss_weight = loss_weight
        self.block_elems = block_elems
        self._loss_name = loss_name

    def forward(self, prior_map: Tensor, label: Tensor, **kwargs) -> Tensor:
        """Compute the weighted loss.

        Args:
            prior_map (Tensor): (B, N, N) context prior map.
            label (Tensor): (B, N) or (B, h, w) labels on the prior grid; ignore included.

        Returns:
            Tensor: Scalar loss.
        """
        return self.loss_weight * context_prior_loss(prior_map, label, self.form,
                                                     self.block_elems)

    @property
    def loss_name(self) -> str:
        """Name of the loss item in the loss dict."""
        return self._loss_name
