# Copyright (c) mmaffseg contributors. All rights reserved.
"""AffinityNet's balanced pair loss against the PSA golden loss case."""
import pytest
import torch
from golden import assert_close, case_paths, load_case
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.models.losses import AffinityPairLoss, affinity_pair_loss
from mmaffseg.wsss import affinity_pair_labels

LOSS_CASES = case_paths('psa', 'aff_loss_*')


def test_loss_fixtures_exist():
    assert LOSS_CASES


@pytest.mark.parametrize('path', LOSS_CASES, ids=lambda p: p.split('/')[-1])
def test_golden_loss_terms_and_gradient(path):
    case = load_case(path)
    aff = torch.from_numpy(case.inputs['aff']).requires_grad_()
    masks = [torch.from_numpy(case.inputs[k]) for k in ('bg_label', 'fg_label', 'neg_label')]
    loss_module = MODELS.build(dict(type='AffinityPairLoss', **case.meta['ctor']))
    loss = loss_module(aff, *masks)
    loss.backward()
    for name, term in zip(('bg_loss', 'fg_loss', 'neg_loss'), affinity_pair_loss(aff, *masks)):
        assert_close(case, name, term)
    assert_close(case, 'loss', loss)
    assert_close(case, 'grad_aff', aff.grad)
    # the stored pair masks are what our label extraction gives for the stored label maps
    labels = torch.from_numpy(case.inputs['label_maps'])
    for ours, theirs in zip(affinity_pair_labels(labels), masks):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_weights_name_and_empty_sets():
    aff = torch.full((1, 2, 3), 0.5)
    ones, zeros = torch.ones_like(aff), torch.zeros_like(aff)
    loss = AffinityPairLoss(term_weights=(1, 0, 0), loss_weight=2., loss_name='loss_x')
    assert loss.loss_name == 'loss_x'
    expected = -2 * torch.log(torch.tensor(0.5 + 1e-5))
    torch.testing.assert_close(loss(aff, ones, zeros, zeros), expected, rtol=1e-5, atol=0)
    # an empty set contributes 0, not NaN (the 1e-5 guard of the count)
    assert AffinityPairLoss()(aff, zeros, zeros, zeros) == 0


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match=r'fg_pos must have the shape of aff \(1, 2, 3\)'):
        affinity_pair_loss(torch.rand(1, 2, 3), torch.ones(1, 2, 3), torch.ones(2, 3),
                           torch.ones(1, 2, 3))
    with pytest.raises(ValueError, match='term_weights needs 3 values'):
        AffinityPairLoss(term_weights=(1, 1))
