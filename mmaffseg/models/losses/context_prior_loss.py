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

``A`` is never built. With the rows of one class ``c`` gathered in a block, ``A`` restricted to
those rows is the class indicator ``m_c`` (a column of ``L``) repeated, so every sum is a
product with ``m_c`` (for instance ``sum_j P_ij A_ij = (P m_c)_i``) and the gradient of the
unary term is ``(P - m_c) / max(P (1 - P), 1e-12)``, PyTorch's BCE derivative. Forward and
backward walk over such row blocks; besides ``P`` and its gradient the memory is O(N * K) plus
one block. :func:`context_prior_loss_materialised` is the direct O(N^2) version that tests and
``tools/analysis_tools/benchmark_cp_loss.py`` compare against.
"""
from typing import Iterator, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

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


def _check_inputs(prior_map: Tensor, one_hot: Tensor, form: str) -> None:
    if form not in FORMS:
        raise ValueError(f'form must be one of {FORMS}, got {form!r}.')
    if prior_map.dim() != 3 or prior_map.shape[1] != prior_map.shape[2]:
        raise ValueError('prior_map must be (B, N, N) with N the number of prior-grid cells, '
                         f'got shape {tuple(prior_map.shape)}.')
    if one_hot.shape[:2] != prior_map.shape[:2]:
        raise ValueError(f'labels give {tuple(one_hot.shape[:2])} (B, N) but prior_map is '
                         f'{tuple(prior_map.shape)}: resize the labels to the prior grid '
                         '(prior_size) first.')


def _neg_log(x: Tensor) -> Tensor:
    """BCE(x, 1) as PyTorch computes it: -max(log x, -100)."""
    return -torch.log(x).clamp(min=_LOG_CLAMP)


def _bce_one_grad(x: Tensor) -> Tensor:
    """d BCE(x, 1) / dx with PyTorch's formula (x - 1) / max(x (1 - x), 1e-12)."""
    return (x - 1) / ((1 - x) * x).clamp(min=_BCE_EPS)


def _class_row_blocks(one_hot: Tensor, block_rows: int) -> Iterator[Tuple[Tensor, Tensor]]:
    """Yield (rows, m_c): up to ``block_rows`` row indices of one class and its indicator."""
    for c in range(one_hot.shape[1]):
        indicator = one_hot[:, c]
        rows = torch.nonzero(indicator, as_tuple=True)[0]
        for start in range(0, rows.numel(), block_rows):
            yield rows[start:start + block_rows], indicator


class _ContextPriorLoss(torch.autograd.Function):
    """Factorised affinity loss; forward and backward walk over per-class row blocks."""

    @staticmethod
    def forward(ctx, prior_map: Tensor, one_hot: Tensor, form: str, block_elems: int) -> Tensor:
        batch, num_cells = prior_map.shape[:2]
        per_row = form == 'official'  # official: one ratio per row; paper: per column
        block_rows = max(1, block_elems // num_cells)
        unary = prior_map.new_zeros((), dtype=torch.float64)  # sum of log P or log(1 - P)
        global_term = prior_map.new_zeros((), dtype=torch.float64)
        coeffs = []
        for b in range(batch):
            P, L = prior_map[b], one_hot[b]
            # per unit u (row, or column for the paper form), shape (N, ):
            total = P.new_zeros(num_cells, dtype=torch.float32)  # sum P
            num = torch.zeros_like(total)  # sum P A'
            spec_num = torch.zeros_like(total)  # sum (1 - P)(1 - A)
            for rows, m in _class_row_blocks(L, block_rows):
                Pb = P.index_select(0, rows).float()  # (nb, N); A = m on these rows
                Qb = 1 - Pb
                # BCE(P, A) with A in {0, 1} is -max(log(A ? P : 1 - P), -100)
                picked = torch.where(m.bool(), Pb, Qb)
                unary += picked.log_().clamp_(min=_LOG_CLAMP).sum().double()
                del picked
                if per_row:
                    total.index_copy_(0, rows, Pb.sum(1))
                    spec_num.index_copy_(0, rows, Qb @ (1 - m))
                    # A' = A with the diagonal zeroed (set in the copy, so no cancellation)
                    Pb[torch.arange(rows.numel(), device=rows.device), rows] = 0
                    num.index_copy_(0, rows, Pb @ m)
                else:
                    col = Pb.sum(0)
                    total += col
                    num += col * m
                    spec_num += Qb.sum(0) * (1 - m)
            n_same = L @ L.sum(0)  # size of each cell's class, (N, )
            rec_den = n_same - 1 if per_row else n_same
            spec_den = num_cells - n_same
            rec_den, spec_den, prec_den = (torch.where(d > 0, d, torch.ones_like(d))
                                           for d in (rec_den, spec_den, total))
            recall, spec, prec = num / rec_den, spec_num / spec_den, num / prec_den
            global_term += (_neg_log(recall).sum(dtype=torch.float64)
                            + _neg_log(spec).sum(dtype=torch.float64)
                            + _neg_log(prec).sum(dtype=torch.float64))
            # d(loss)/dP_ij = alpha_u A'_ij + beta_u (1 - A_ij) + gamma_u, u the row/column
            d_prec = _bce_one_grad(prec)
            alpha = _bce_one_grad(recall) / rec_den + d_prec / prec_den
            beta = -_bce_one_grad(spec) / spec_den
            gamma = torch.where(total > 0, -d_prec * num / prec_den**2, torch.zeros_like(num))
            coeffs.append(torch.stack([alpha, beta, gamma]))
        ctx.save_for_backward(prior_map, one_hot, torch.stack(coeffs))
        ctx.form, ctx.block_rows = form, block_rows
        loss = (-unary / (batch * num_cells**2) + global_term / (batch * num_cells))
        return loss.to(prior_map.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        prior_map, one_hot, coeffs = ctx.saved_tensors
        batch, num_cells = prior_map.shape[:2]
        per_row = ctx.form == 'official'
        c_unary = float(grad_out) / (batch * num_cells**2)
        grad = torch.empty_like(prior_map)
        for b in range(batch):
            alpha, beta, gamma = coeffs[b] * (float(grad_out) / (batch * num_cells))
            for rows, m in _class_row_blocks(one_hot[b], ctx.block_rows):
                # alpha_u where A_ij = 1, beta_u where A_ij = 0, selected rather than mixed
                # arithmetically: a saturated ratio makes alpha or beta ~1e12 and it must
                # not leak into entries whose derivative is exactly zero.
                same = m.bool()
                if per_row:  # coefficients of the block's rows, broadcast along j
                    coef = torch.where(same, (alpha + gamma)[rows, None],
                                       (beta + gamma)[rows, None])
                    local = torch.arange(rows.numel(), device=rows.device)
                    coef[local, rows] = gamma[rows]  # diagonal: A'_ii = 0 and 1 - A_ii = 0
                else:  # coefficients of every column, broadcast along i
                    coef = torch.where(same, alpha + gamma, beta + gamma).expand(rows.numel(), -1)
                Pb = prior_map[b].index_select(0, rows).float()
                # unary: PyTorch's BCE derivative (P - A) / max((1 - P) P, 1e-12)
                denom = (1 - Pb).mul_(Pb).clamp_(min=_BCE_EPS)
                g = torch.addcdiv(coef, Pb.sub_(m), denom, value=c_unary)
                grad[b].index_copy_(0, rows, g.to(grad.dtype))
        return grad, None, None, None


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
        block_elems (int): Elements of ``P`` processed at once (memory knob; the result does
            not depend on it). Defaults to 2**22.

    Returns:
        Tensor: Scalar loss (without ``loss_weight``).
    """
    one_hot = affinity_one_hot(label).to(prior_map.device)
    _check_inputs(prior_map, one_hot, form)
    return _ContextPriorLoss.apply(prior_map, one_hot, form, int(block_elems))


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
    one_hot = affinity_one_hot(label).to(prior_map.device)
    _check_inputs(prior_map, one_hot, form)
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
