# Copyright (c) mmaffseg contributors. All rights reserved.
"""The context prior loss before its kernels were merged: the baseline of ``benchmark.py
cp-loss``.

Yu et al., "Context Prior for Scene Segmentation", CVPR 2020 (the loss of
:mod:`mmaffseg.models.losses.context_prior_loss`). This forward is the row-block loss as it was
before: the three row sums of a block in three calls, and recall, specificity and precision,
their BCE terms and derivatives computed as three separate (B, N) tensors, each with its own
kernels. The backward is the current one (its block loop did not change; the two additions of
the coefficients it made first are made here, at the end of the forward), so the time and
operation ratios of ours / baseline measure the merged kernels alone. Both give the same loss
and gradients to rounding (``tests/test_tools/test_benchmark_cp_loss.py``).
"""
import torch
from torch import Tensor
from torch.amp import custom_fwd

from mmaffseg.models.losses.context_prior_loss import (
    _LOG_CLAMP,
    _bce_one_grad,
    _check_inputs,
    _class_ranks,
    _ContextPriorLoss,
    _default_block_elems,
    _neg_log,
    _row_blocks,
    _Workspace,
)
from mmaffseg.ops.precision import float32_math


class _UnmergedContextPriorLoss(_ContextPriorLoss):
    """:class:`_ContextPriorLoss` with the forward before the merge (module docstring)."""

    @staticmethod
    @custom_fwd(device_type='cuda', cast_inputs=torch.float32)
    def forward(ctx, prior_map: Tensor, label: Tensor, form: str, block_elems: int) -> Tensor:
        batch, num_cells = prior_map.shape[:2]
        per_row = form == 'official'
        block_rows = max(1, block_elems // (batch * num_cells))
        blocks = list(_row_blocks(num_cells, block_rows))
        code, n_same = _class_ranks(label, prior_map.dtype)
        work = _Workspace(prior_map, block_rows, 3)
        unary = prior_map.new_empty(len(blocks), batch)
        total = prior_map.new_zeros(batch, num_cells)
        num = torch.zeros_like(total)
        spec_num = torch.zeros_like(total)
        for k, (start, stop) in enumerate(blocks):
            other, picked, miss = work.views(stop - start)
            torch.ne(code[:, start:stop, None], code[:, None, :], out=other)
            Pb = prior_map[:, start:stop]
            torch.sub(other, Pb, out=picked).abs_()
            torch.mul(picked, other, out=miss)
            hit = torch.sub(picked, miss, out=other)
            if per_row:
                hit.diagonal(offset=start, dim1=1, dim2=2).zero_()
                torch.sum(Pb, 2, out=total[:, start:stop])
                torch.sum(hit, 2, out=num[:, start:stop])
                torch.sum(miss, 2, out=spec_num[:, start:stop])
            else:
                total += Pb.sum(1)
                num += hit.sum(1)
                spec_num += miss.sum(1)
            picked.log_().clamp_(min=_LOG_CLAMP)
            torch.sum(picked.view(batch, -1), 1, out=unary[k])
        del work
        n_same = n_same.to(total.dtype)
        rec_den = n_same - 1 if per_row else n_same
        spec_den = num_cells - n_same
        rec_den, spec_den, prec_den = (torch.where(d > 0, d, torch.ones_like(d))
                                       for d in (rec_den, spec_den, total))
        recall, spec, prec = num / rec_den, spec_num / spec_den, num / prec_den
        global_term = (_neg_log(recall).sum(dtype=torch.float64)
                       + _neg_log(spec).sum(dtype=torch.float64)
                       + _neg_log(prec).sum(dtype=torch.float64))
        d_prec = _bce_one_grad(prec)
        alpha = _bce_one_grad(recall) / rec_den + d_prec / prec_den
        beta = -_bce_one_grad(spec) / spec_den
        gamma = torch.where(total > 0, -d_prec * num / prec_den**2, torch.zeros_like(num))
        ctx.save_for_backward(prior_map, code, torch.stack([alpha + gamma, beta + gamma, gamma]))
        ctx.form, ctx.block_rows = form, block_rows
        loss = (-unary.sum(dtype=torch.float64) / (batch * num_cells**2)
                + global_term / (batch * num_cells))
        return loss.to(prior_map.dtype)


@float32_math
def context_prior_loss_unmerged(prior_map: Tensor, label: Tensor, form: str = 'official',
                                block_elems: int = None) -> Tensor:
    """:func:`~mmaffseg.models.losses.context_prior_loss` with the forward before the merge."""
    label = label.reshape(label.shape[0], -1).to(prior_map.device)
    _check_inputs(prior_map, label, form)
    if block_elems is None:
        block_elems = _default_block_elems(prior_map.device)
    return _UnmergedContextPriorLoss.apply(prior_map, label, form, int(block_elems))
