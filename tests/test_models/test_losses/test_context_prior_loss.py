# Copyright (c) mmaffseg contributors. All rights reserved.
"""The factorised context prior loss equals the materialised-A computation (values and
gradients) for both forms, including degenerate classes and saturated probabilities; the
paper form is also checked against a loop-by-loop transcription of the paper's equations."""
import math

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmaffseg.models.losses import (
    ContextPriorLoss,
    context_prior_loss,
    context_prior_loss_materialised,
)
from mmaffseg.models.utils.counting import count_occurrences
from mmaffseg.utils.profiling import count_aten_ops


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
