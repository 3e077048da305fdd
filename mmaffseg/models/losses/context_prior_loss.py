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
``A`` and ``1 - A`` are 0/1 float blocks from comparing float class codes of the block's rows
with those of all cells, so every sum is a masked row or column sum (a product with a 0/1 mask,
which is exact) and the gradient of the unary term is ``(P - A) / max(P (1 - P), 1e-12)``,
PyTorch's BCE derivative. The class code and class size of every cell (the recall and
specificity denominators) come from one sort of the labels and a binary search, so forward and
backward do no data-dependent host synchronisation: the block loop depends only on the shapes.
Besides ``P`` and its gradient the memory is O(B * N) plus a few blocks.

Speed: forward reads ``P`` once and backward reads it once and writes its gradient once; every
other pass runs on a few block-sized buffers allocated once per call and reused (``out=`` / in
place), small enough on CPU (2**18 elements) to stay in the cache between the passes. Per-block
temporaries would be paged in by the kernel for every block and operation, which cost more than
the arithmetic. The floor (one log per entry forward, one division per entry into a new
gradient backward, or the memory traffic, whichever is slower) and our ratio to it are printed
by ``tools/analysis_tools/benchmark.py cp-loss``.
:func:`context_prior_loss_materialised` is the direct O(N^2) version that tests and
``tools/analysis_tools/benchmark.py cp-loss`` compare against.

Mixed precision: the loss runs in float32 with autocast off whatever the caller's precision
(:func:`~mmaffseg.ops.precision.float32_math`; the autograd Function is also declared
with ``torch.amp.custom_fwd(cast_inputs=torch.float32)``), since half-precision logs and the
1e-12-guarded BCE derivative overflow; :class:`~mmaffseg.models.decode_heads.CPHead` computes
the prior map's sigmoid in float32 for the same reason.

(Over 300 lines: one loss whose forward and hand-written backward share the row-block loop and
its buffers; about 55 lines are this documentation.)
"""
from typing import Iterator, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor
from torch.amp import custom_bwd, custom_fwd

from ...ops.precision import float32_math

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


#: Default elements of ``P`` per row block: cache-sized on CPU; on a GPU few large blocks, since
#: every block launches ~20 kernels.
DEFAULT_BLOCK_ELEMS = dict(cpu=1 << 18, cuda=1 << 26)


def _default_block_elems(device: torch.device) -> int:
    return DEFAULT_BLOCK_ELEMS.get(device.type, DEFAULT_BLOCK_ELEMS['cuda'])


def _row_blocks(num_cells: int, block_rows: int) -> Iterator[Tuple[int, int]]:
    """(start, stop) of consecutive row blocks; depends on shapes only."""
    for start in range(0, num_cells, block_rows):
        yield start, min(start + block_rows, num_cells)


class _Workspace:
    """Buffers for one row block, allocated once per call and reused for every block.

    Every operation of the block loop writes into these (``out=`` or in place): a fresh
    block-sized temporary per operation and block would be paged in by the kernel each time,
    which on CPU costs more than the arithmetic, and small blocks stay in the cache between
    the operations that read them.
    """

    def __init__(self, prior_map: Tensor, block_rows: int, num_buffers: int) -> None:
        batch, num_cells = prior_map.shape[:2]
        self.shape = (batch, num_cells)
        self.buffers = prior_map.new_empty(num_buffers, batch * block_rows * num_cells)

    def views(self, rows: int) -> Tuple[Tensor, ...]:
        """The buffers as contiguous (B, rows, N) tensors."""
        batch, num_cells = self.shape
        size = batch * rows * num_cells
        return tuple(buf[:size].view(batch, rows, num_cells) for buf in self.buffers)


def _class_ranks(label: Tensor, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """Each cell's class as a float code, and the size of its class, without a host sync.

    The code is the number of cells of the sample with a smaller label (equal labels, equal
    codes; < N, so exact in float32 for any prior grid that fits in memory): comparing codes
    with a float comparison writing a float mask is several times faster than comparing int64
    labels into a boolean mask and selecting with it.
    """
    ordered = label.sort(dim=-1).values.contiguous()
    label = label.contiguous()
    first = torch.searchsorted(ordered, label, right=False)
    size = torch.searchsorted(ordered, label, right=True) - first
    return first.to(dtype), size


class _ContextPriorLoss(torch.autograd.Function):
    """Factorised affinity loss; forward and backward walk over blocks of rows of ``P``.

    Per block, forward reads ``P`` once from memory and backward reads it once and writes its
    gradient once; the other passes run on block-sized buffers that stay in the cache. The
    masks are 0/1 floats and every masked value is a product with them, which is exact
    (``x * 1 = x``, ``x * 0 = 0`` for finite ``x``), so nothing is mixed arithmetically. The
    kernels per call are few: two row sums of a block in one call, and the three ratios of
    every unit (recall, specificity, precision) with their derivatives as (3, B, N) tensors.
    """

    @staticmethod
    @custom_fwd(device_type='cuda', cast_inputs=torch.float32)
    def forward(ctx, prior_map: Tensor, label: Tensor, form: str, block_elems: int) -> Tensor:
        batch, num_cells = prior_map.shape[:2]
        per_row = form == 'official'  # official: one ratio per row; paper: per column
        block_rows = max(1, block_elems // (batch * num_cells))
        blocks = list(_row_blocks(num_cells, block_rows))
        code, n_same = _class_ranks(label, prior_map.dtype)
        work = _Workspace(prior_map, block_rows, 3)
        # per block and sample: sum of max(log(A ? P : 1 - P), -100)
        unary = prior_map.new_empty(len(blocks), batch)
        # per sample and unit u (row, or column for the paper form): sum P, and stacked
        # sum P A' and sum (1 - P)(1 - A), shapes (B, N) and (2, B, N)
        total = prior_map.new_zeros(batch, num_cells)
        sums = prior_map.new_zeros(2, batch, num_cells)
        row_code, col_code = code[:, :, None], code[:, None, :]  # views made once
        for k, (start, stop) in enumerate(blocks):
            rows = stop - start
            picked, other, miss = work.views(rows)
            # the second and third buffers as one (2, B, nb, N) view: both sums in one call
            hit_miss = work.buffers[1:, :batch * rows * num_cells].view(2, batch, rows,
                                                                        num_cells)
            torch.ne(row_code[:, start:stop], col_code, out=other)  # 1 - A
            Pb = prior_map[:, start:stop]
            torch.sub(other, Pb, out=picked).abs_()  # A ? P : 1 - P
            torch.mul(picked, other, out=miss)  # (1 - P)(1 - A)
            hit = torch.sub(picked, miss, out=other)  # P A
            if per_row:
                # A' = A with the diagonal zeroed (set in the product, so no cancellation)
                hit.diagonal(offset=start, dim1=1, dim2=2).zero_()
                torch.sum(Pb, 2, out=total[:, start:stop])
                torch.sum(hit_miss, 3, out=sums[:, :, start:stop])
            else:
                total += Pb.sum(1)
                sums += hit_miss.sum(2)
            # BCE(P, A) with A in {0, 1} is -max(log(A ? P : 1 - P), -100)
            picked.log_().clamp_(min=_LOG_CLAMP)
            torch.sum(picked.view(batch, -1), 1, out=unary[k])
        del work
        n_same = n_same.to(total.dtype)  # size of each cell's class
        # recall, specificity, precision of every unit: (3, B, N) numerators / denominators
        nums = torch.cat([sums, sums[:1]])
        dens = torch.stack([n_same - 1 if per_row else n_same, num_cells - n_same, total])
        dens = torch.where(dens > 0, dens, 1.0)
        ratios = nums / dens
        global_term = _neg_log(ratios).sum(dtype=torch.float64)
        # d(loss)/dP_ij = alpha_u A'_ij + beta_u (1 - A_ij) + gamma_u, u the row/column, with
        # alpha = g_rec / den_rec + g_prec / den_prec, beta = -g_spec / den_spec and
        # gamma = -g_prec num / den_prec^2 (0 where sum P = 0: there num = 0)
        q = _bce_one_grad(ratios).div_(dens)
        gamma = q[2] * ratios[2]
        coeffs = torch.stack([q[0] + q[2], q[1].neg_(), gamma.neg_()])  # alpha, beta, gamma
        coeffs[:2] += coeffs[2]  # the coefficients of A'_ij = 1 and of (1 - A_ij) = 1
        ctx.save_for_backward(prior_map, code, coeffs)
        ctx.form, ctx.block_rows = form, block_rows
        loss = (-unary.sum(dtype=torch.float64) / (batch * num_cells**2)
                + global_term / (batch * num_cells))
        return loss.to(prior_map.dtype)

    @staticmethod
    @custom_bwd(device_type='cuda')
    def backward(ctx, grad_out: Tensor):
        prior_map, code, coeffs = ctx.saved_tensors
        batch, num_cells = prior_map.shape[:2]
        per_row = ctx.form == 'official'
        grad_out = grad_out.to(prior_map.dtype)  # a 0-d tensor: no host synchronisation
        # the unary derivative is computed with its sign flipped (see below)
        neg_c_unary = -grad_out / (batch * num_cells**2)
        on_same, on_diff, gamma = coeffs * (grad_out / (batch * num_cells))  # each (B, N)
        if per_row:  # coefficients of the block's rows, broadcast along j
            on_same, on_diff = on_same[:, :, None], on_diff[:, :, None]
        else:  # coefficients of every column, broadcast along i
            on_same, on_diff = on_same[:, None, :], on_diff[:, None, :]
        work = _Workspace(prior_map, ctx.block_rows, 3)
        grad = torch.empty_like(prior_map)
        row_code, col_code = code[:, :, None], code[:, None, :]
        for start, stop in _row_blocks(num_cells, ctx.block_rows):
            same, neg, diff = work.views(stop - start)
            torch.eq(row_code[:, start:stop], col_code, out=same)  # A on these rows
            Pb = prior_map[:, start:stop]
            # unary: PyTorch's BCE derivative (P - A) / max((1 - P) P, 1e-12), computed as
            # (P - A) / min((P - 1) P, -1e-12) = -that, from P - 1 (the exact negative of 1 - P)
            torch.sub(Pb, same, out=diff)  # P - A
            torch.sub(Pb, 1, out=neg).mul_(Pb).clamp_(max=-_BCE_EPS)
            diff.div_(neg)
            # on_same where A_ij = 1, on_diff where A_ij = 0: (on_diff - A on_diff) + A on_same
            # selects exactly (a saturated ratio makes alpha or beta ~1e12 and it must not leak
            # into the other entries, as it would through on_diff + A (on_same - on_diff)).
            row_same = on_same[:, start:stop] if per_row else on_same
            row_diff = on_diff[:, start:stop] if per_row else on_diff
            coef = torch.addcmul(row_diff, same, row_diff, value=-1, out=neg)
            coef.addcmul_(same, row_same)
            if per_row:  # diagonal: A'_ii = 0 and 1 - A_ii = 0
                coef.diagonal(offset=start, dim1=1, dim2=2).copy_(gamma[:, start:stop])
            torch.addcmul(coef, diff, neg_c_unary, out=grad[:, start:stop])
        return grad, None, None, None


@float32_math
def context_prior_loss(prior_map: Tensor,
                       label: Tensor,
                       form: str = 'official',
                       block_elems: Optional[int] = None) -> Tensor:
    """Context prior affinity loss from ``P`` and the labels, without materialising ``A``.

    Args:
        prior_map (Tensor): (B, N, N) context prior map (probabilities).
        label (Tensor): (B, N) or (B, h, w) integer labels on the prior grid (h * w = N).
        form (str): ``'official'`` (row-wise, diagonal excluded) or ``'paper'`` (column-wise).
            Defaults to ``'official'``.
        block_elems (int, optional): Elements of ``P`` processed at once, over the whole batch
            (speed and memory knob; the result does not depend on it). Defaults to None:
            :data:`DEFAULT_BLOCK_ELEMS` of the device (2**18 on CPU, 2**26 on a GPU).

    Returns:
        Tensor: Scalar loss (without ``loss_weight``).
    """
    label = label.reshape(label.shape[0], -1).to(prior_map.device)
    _check_inputs(prior_map, label, form)
    if block_elems is None:
        block_elems = _default_block_elems(prior_map.device)
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
        block_elems (int, optional): Elements of ``P`` processed at once; the value does not
            depend on it. Defaults to None: :data:`DEFAULT_BLOCK_ELEMS` of the device.
        loss_name (str): Name in the loss dict; must start with ``loss_`` for mmseg to sum
            it. Defaults to ``'loss_prior'``.
    """

    def __init__(self,
                 form: str = 'official',
                 loss_weight: float = 1.0,
                 block_elems: Optional[int] = None,
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
