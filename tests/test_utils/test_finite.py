# Copyright (c) mmaffseg contributors. All rights reserved.
"""Finding and naming non-finite weights and losses."""
import pytest
import torch

from mmaffseg.utils import CheckpointError, check_finite_weights
from mmaffseg.utils.finite import first_non_finite, non_finite_terms


def test_first_non_finite_names_the_tensor_and_counts():
    bad = torch.zeros(2, 3)
    bad[0, 1], bad[1, 2] = float('nan'), float('-inf')
    state = dict(a=torch.ones(2), steps=torch.tensor(3), b=bad, c=torch.full((1, ), float('nan')))
    assert first_non_finite(state.items()) == 'b (1 NaN, 1 inf of 6 values)'
    assert first_non_finite(dict(a=torch.ones(2), n=torch.tensor(7)).items()) is None


def test_check_finite_weights_names_file_tensor_and_opt_out():
    state = dict(w=torch.ones(3), bias=torch.tensor([0.0, float('inf')]))
    with pytest.raises(CheckpointError) as info:
        check_finite_weights(dict(state_dict=state, meta={}), 'ckpt.pth', '--allow-x')
    message = str(info.value)
    assert message.startswith('checkpoint ckpt.pth holds non-finite weights: bias (0 NaN, 1 inf')
    assert 'pass --allow-x' in message
    with pytest.raises(CheckpointError, match='--allow-nonfinite-weights'):
        check_finite_weights(state, 'bare.pth')  # a bare state dict
    check_finite_weights(dict(state_dict=dict(w=torch.ones(3))), 'good.pth')


def test_non_finite_terms_only_loss_terms():
    log_vars = dict(loss=torch.tensor(float('nan')), loss_ce=torch.tensor(float('nan')),
                    loss_aux=torch.tensor(0.5), acc_seg=torch.tensor(float('nan')))
    assert non_finite_terms(log_vars) == ['loss=nan', 'loss_ce=nan']
    assert non_finite_terms(dict(loss=1.0)) == []
