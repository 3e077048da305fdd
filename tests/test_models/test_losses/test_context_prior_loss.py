# Copyright (c) mmaffseg contributors. All rights reserved.
"""The factorised context prior loss equals the materialised-A computation (values and
gradients) for both forms, including degenerate classes and saturated probabilities; the
paper form is also checked against a loop-by-loop transcription of the paper's equations, and
both forms against the equations written out in float64 on the materialised ideal affinity."""
import math

import pytest
import torch
import torch.nn.functional as F
from benchmarks.profiling import count_aten_ops
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmaffseg.models.losses import (
    ContextPriorLoss,
    context_prior_loss,
    context_prior_loss_materialised,
)
from mmaffseg.models.utils.counting import count_occurrences


def _labels(batch, h, w, num_classes, seed, ignore_ratio=0.2):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, num_classes, (batch, h, w), generator=g)
    label[torch.rand(batch, h, w, generator=g) < ignore_ratio] = 255
    return label


def _prior(batch, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, n, generator=g)


def _value_and_grad(fn, prior, label, **kwargs):
    prior = prior.clone().requires_grad_()
    loss = fn(prior, label, **kwargs)
    loss.backward()
    return loss.detach(), prior.grad


def _assert_same(prior, label, form, **kwargs):
    ours, g_ours = _value_and_grad(context_prior_loss, prior, label, form=form, **kwargs)
    ref, g_ref = _value_and_grad(context_prior_loss_materialised, prior, label, form=form)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-5 * float(g_ref.abs().max()))


@pytest.mark.parametrize('form', ['official', 'paper'])
@pytest.mark.parametrize('batch,h,w,num_classes', [(1, 5, 7, 3), (3, 4, 6, 4), (2, 9, 9, 6)])
def test_matches_materialised(form, batch, h, w, num_classes):
    label = _labels(batch, h, w, num_classes, seed=h * w)
    label[0, 0, 0] = 254  # a class with a single cell: zero recall denominator (official)
    _assert_same(_prior(batch, h * w, seed=batch), label, form)


@pytest.mark.parametrize('form', ['official', 'paper'])
def test_degenerate_images(form):
    label = torch.zeros(2, 3, 4, dtype=torch.long)  # one class everywhere: zero spec denominator
    label[1, 0, 0] = 7
    prior = _prior(2, 12, seed=0)
    prior[0, 0] = 0  # a row of zeros: zero precision denominator
    prior[1, :, 3] = 1  # saturated probabilities: BCE clamps and the 1e-12 guard
    prior[1, 2, 5] = 0
    _assert_same(prior, label, form)


@pytest.mark.parametrize('block_elems', [1, 7, 1 << 21])
def test_block_size_does_not_change_result(block_elems):
    label = _labels(2, 6, 5, 4, seed=3)
    _assert_same(_prior(2, 30, seed=4), label, 'official', block_elems=block_elems)


def _paper_loop(prior, label):
    """The paper's equations, one scalar at a time (columns j, sums over rows i)."""
    batch, n, _ = prior.shape
    flat = label.reshape(batch, -1)
    total = 0.0
    for b in range(batch):
        p = prior[b].double()
        a = (flat[b][:, None] == flat[b][None, :]).double()
        unary = -(a * p.log().clamp(min=-100) + (1 - a) * (1 - p).log().clamp(min=-100)).mean()
        g = 0.0
        for j in range(n):
            tp = sum(float(a[i, j] * p[i, j]) for i in range(n))
            recall = tp / float(a[:, j].sum())  # >= 1: the diagonal
            prec = tp / float(p[:, j].sum()) if p[:, j].sum() > 0 else tp
            neg = float((1 - a[:, j]).sum())
            spec = sum(float((1 - a[i, j]) * (1 - p[i, j])) for i in range(n))
            spec = spec / neg if neg > 0 else spec
            g += -sum(max(math.log(v), -100) if v > 0 else -100 for v in (recall, prec, spec))
        total += float(unary) + g / n
    return total / batch


def test_paper_form_matches_paper_equations():
    label = _labels(2, 3, 4, 3, seed=5)
    prior = _prior(2, 12, seed=6)
    expected = _paper_loop(prior, label)
    assert float(context_prior_loss(prior, label, form='paper')) == pytest.approx(expected, 1e-5)
    assert float(context_prior_loss_materialised(prior, label, form='paper')) == pytest.approx(
        expected, 1e-5)


def test_forms_differ():
    label = _labels(2, 4, 4, 3, seed=8)
    prior = _prior(2, 16, seed=9)
    assert float(context_prior_loss(prior, label)) != pytest.approx(
        float(context_prior_loss(prior, label, form='paper')), rel=1e-3)


def test_registered_loss_module():
    init_default_scope('mmseg')
    loss_fn = MODELS.build(dict(type='ContextPriorLoss', loss_weight=0.5))
    assert isinstance(loss_fn, ContextPriorLoss) and loss_fn.loss_name == 'loss_prior'
    label = _labels(2, 3, 3, 2, seed=1)
    prior = _prior(2, 9, seed=2)
    assert float(loss_fn(prior, label)) == pytest.approx(
        0.5 * float(context_prior_loss(prior, label.flatten(1))), rel=1e-6)


def test_errors_say_what_to_change():
    with pytest.raises(ValueError, match="form must be one of"):
        ContextPriorLoss(form='rows')
    with pytest.raises(ValueError, match='resize the labels to the prior grid'):
        context_prior_loss(_prior(2, 9, 0), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r'\(B, N, N\)'):
        context_prior_loss(torch.rand(2, 9, 8), torch.zeros(2, 9, dtype=torch.long))


@pytest.mark.parametrize('form', ['official', 'paper'])
def test_forward_and_backward_do_not_synchronise_with_the_host(form):
    """No nonzero / unique / item in the loss: on a GPU each one stalls the step. The old
    class-by-class walk made one nonzero per class and read grad_out with float()."""
    label = _labels(2, 6, 8, 5, seed=11)
    prior = _prior(2, 48, seed=12).requires_grad_()

    def step():
        context_prior_loss(prior, label, form=form, block_elems=500).backward()

    ops, syncs = count_aten_ops(step)
    assert ops > 0 and syncs == 0


def test_count_occurrences_matches_unique_counts():
    g = torch.Generator().manual_seed(13)
    data = torch.randint(0, 6, (3, 40), generator=g)
    data[0, :5] = 255
    values = torch.randint(0, 8, (3, 7), generator=g)
    got = count_occurrences(values, data)
    expected = torch.tensor([[int((data[b] == v).sum()) for v in values[b]] for b in range(3)])
    torch.testing.assert_close(got, expected)


def _reference_float64(prior, label, form):
    """The loss term by term as the paper / the official code write it (methods.md), in float64
    on the materialised ideal affinity ``A = [label_i == label_j]`` (ignore 255 is one more
    class): mean BCE(P, A), then recall, specificity and precision per row (official, with
    ``A'`` = A without its diagonal) or per column (paper), zero denominators -> 1."""
    prior = prior.double()
    batch, n, _ = prior.shape
    total = 0
    for b in range(batch):
        p, lab = prior[b], label[b].reshape(-1)
        a = (lab[:, None] == lab[None, :]).double()
        unary = -(a * p.log().clamp(min=-100) + (1 - a) * (1 - p).log().clamp(min=-100)).mean()
        if form == 'official':
            target, dim = a * (1 - torch.eye(n, dtype=torch.float64)), 1
        else:
            target, dim = a, 0

        def ratio(numer, denom):
            return numer / torch.where(denom > 0, denom, torch.ones_like(denom))

        tp = (p * target).sum(dim)
        recall = ratio(tp, target.sum(dim))
        spec = ratio(((1 - p) * (1 - a)).sum(dim), (1 - a).sum(dim))
        prec = ratio(tp, p.sum(dim))
        # BCE(x, 1) with PyTorch's BCE as the official code: its derivative at x = 0 (the
        # recall of a one-cell class) is -1e12, where that of -clamp(log x, -100) is NaN
        total = total + unary + sum(F.binary_cross_entropy(x, torch.ones_like(x))
                                    for x in (recall, spec, prec))
    return total / batch


@pytest.mark.parametrize('form', ['official', 'paper'])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('block_elems', [5 * 2 * 35, 1 << 22])
def test_matches_float64_equations(form, dtype, block_elems):
    """Value and gradient against the equations in float64: unsorted labels from a sparse set
    of classes (most of 0..18 absent), ignore 255, a single-cell class, batch 2, blocks of 5
    rows over 35 cells (a partial last block) and a single block."""
    g = torch.Generator().manual_seed(21)
    values = torch.tensor([0, 3, 7, 18, 255])
    label = values[torch.randint(0, 5, (2, 5, 7), generator=g)]
    label[1, 2, 3] = 11  # a class of one cell
    prior = (0.01 + 0.98 * torch.rand(2, 35, 35, generator=g, dtype=torch.float64))
    ref_prior = prior.clone().requires_grad_()
    ref = _reference_float64(ref_prior, label, form)
    ref.backward()
    ours, grad = _value_and_grad(context_prior_loss, prior.to(dtype), label, form=form,
                                 block_elems=block_elems)
    assert ours.dtype == dtype and grad.dtype == dtype
    tol = dict(rtol=1e-10, atol=0) if dtype == torch.float64 else dict(rtol=2e-6, atol=0)
    torch.testing.assert_close(ours.double(), ref.detach(), **tol)
    scale = float(ref_prior.grad.abs().max())
    atol = 1e-12 * scale if dtype == torch.float64 else 1e-5 * scale
    torch.testing.assert_close(grad.double(), ref_prior.grad, rtol=1e-4, atol=atol)


def test_block_loop_allocates_nothing_per_block():
    """The row-block loop writes into buffers allocated once per call: a block-sized temporary
    per operation and block is paged in by the kernel every time, which cost more than the
    arithmetic (the old loop allocated several per block). Counted with the profiler: the
    allocations of at least one block are the two workspaces and the gradient, whatever the
    number of blocks."""
    g = torch.Generator().manual_seed(22)
    batch, n = 2, 256
    label = torch.randint(0, 6, (batch, n), generator=g)
    prior = torch.rand(batch, n, n, generator=g)

    def block_sized_allocations(block_rows):
        block_bytes = batch * block_rows * n * prior.element_size()
        with torch.profiler.profile(profile_memory=True) as prof:
            _value_and_grad(context_prior_loss, prior, label,
                            block_elems=batch * block_rows * n)
        return sum(1 for e in prof.events() if e.self_cpu_memory_usage >= block_bytes)

    assert block_sized_allocations(8) == block_sized_allocations(32) <= 4
