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


@pytest.mark.parametrize('loader', ['load_model_weights', 'load_local_weights'])
def test_inference_loaders_refuse_non_finite_weights(tmp_path, loader):
    """The loaders behind inference (init_model, the demos, pytorch2onnx) and the pseudo-label
    runner refuse a NaN weight naming the file and the tensor, unless allowed."""
    import mmaffseg.utils.checkpoint as checkpoint
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state['0.weight'].view(-1)[1] = float('nan')
    path = str(tmp_path / 'nan.pth')
    torch.save(dict(state_dict=state, meta={}), path)
    load = getattr(checkpoint, loader)
    args = (model, path, 'CKPT') if loader == 'load_local_weights' else (model, path)
    with pytest.raises(CheckpointError, match=r'nan\.pth holds non-finite weights: 0\.weight '
                       r'\(1 NaN, 0 inf of 2 values\).*pass --allow-it'):
        load(*args, nonfinite_opt_out='--allow-it')
    assert torch.isfinite(model[0].weight).all()  # nothing was loaded
    load(*args, allow_nonfinite=True)
    assert torch.isnan(model[0].weight).sum() == 1
