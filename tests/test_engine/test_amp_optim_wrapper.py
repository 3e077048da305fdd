# Copyright (c) mmaffseg contributors. All rights reserved.
"""AnyDeviceAmpOptimWrapper: mmengine's AmpOptimWrapper (which refuses a CPU) that trains on CPU
in bfloat16 autocast; a loss scaler only where it is asked for; float16 refused on CPU."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim import AmpOptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope

import mmaffseg  # noqa: F401
from mmaffseg.engine import AnyDeviceAmpOptimWrapper

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU behaviour')


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))


def _wrapper(model, **kwargs):
    init_default_scope('mmseg')
    cfg = dict(type='AnyDeviceAmpOptimWrapper', optimizer=dict(type='SGD', lr=0.1), **kwargs)
    return build_optim_wrapper(model, cfg)


def test_mmengine_amp_wrapper_refuses_a_cpu():
    """The reason for the subclass: mmengine's own wrapper cannot be built here."""
    model = _model()
    with pytest.raises(AssertionError, match='only available training on gpu'):
        build_optim_wrapper(model, dict(type='AmpOptimWrapper',
                                        optimizer=dict(type='SGD', lr=0.1)))


def test_cpu_step_in_bfloat16_autocast_without_scaler():
    model = _model()
    wrapper = _wrapper(model, dtype='bfloat16', loss_scale=dict(enabled=False))
    assert isinstance(wrapper, AnyDeviceAmpOptimWrapper) and isinstance(wrapper, AmpOptimWrapper)
    assert wrapper.cast_dtype == torch.bfloat16 and not wrapper.loss_scaler.is_enabled()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert torch.get_autocast_dtype('cpu') == torch.bfloat16
        out = model(x)
    assert out.dtype == torch.bfloat16
    loss = out.float().square().mean()
    before = [p.detach().clone() for p in model.parameters()]
    loss.backward()
    expected = [b - 0.1 * p.grad for b, p in zip(before, model.parameters())]
    wrapper.step()
    for want, p in zip(expected, model.parameters()):
        torch.testing.assert_close(p.detach(), want)  # an unscaled plain SGD step
    assert wrapper.state_dict()['loss_scaler'] == {}


def test_dynamic_loss_scale_on_cpu_unscales_before_the_step():
    """A scaler asked for (float scale 1024) multiplies the loss and divides the gradients
    back: the step equals the unscaled one."""
    model, ref = _model(), _model()
    wrapper = _wrapper(model, dtype='bfloat16', loss_scale=1024.)
    assert wrapper.loss_scaler.is_enabled() and wrapper.loss_scaler.get_scale() == 1024.
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    wrapper.update_params(model(x).square().mean())
    ref(x).square().mean().backward()
    ref_opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize('dtype', ['float16', torch.float16, 'float32'])
def test_cpu_refuses_other_dtypes(dtype):
    with pytest.raises(ValueError, match='optim_wrapper.dtype'):
        _wrapper(_model(), dtype=dtype)


def test_default_dtype_on_cpu_is_bfloat16():
    assert _wrapper(_model()).cast_dtype == torch.bfloat16
