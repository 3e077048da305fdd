# Copyright (c) mmaffseg contributors. All rights reserved.
"""MPM: shapes (also smaller than the pools), residual form, gradients, norm switch."""
import pytest
import torch

from mmaffseg.models.layers import MPM


@pytest.mark.parametrize('size', [(1, 1), (5, 7), (23, 31)])
def test_mpm_keeps_shape(size):
    mpm = MPM(16, pool_sizes=(20, 12)).eval()
    x = torch.randn(2, 16, *size)
    out = mpm(x)
    assert out.shape == x.shape and bool((out >= 0).all())


def test_mpm_reduces_to_a_quarter_and_any_number_of_pools():
    mpm = MPM(16, pool_sizes=(6, 3, 1)).eval()
    assert len(mpm.pool_convs) == 3
    assert mpm.reduce_short.conv.out_channels == 4 and mpm.project.conv.out_channels == 16
    assert mpm(torch.randn(1, 16, 7, 9)).shape == (1, 16, 7, 9)


def test_mpm_is_residual():
    mpm = MPM(8).eval()
    torch.nn.init.zeros_(mpm.project.bn.weight)
    torch.nn.init.zeros_(mpm.project.bn.bias)
    mpm.project.bn.running_mean.zero_()
    x = torch.randn(1, 8, 6, 5)
    torch.testing.assert_close(mpm(x), x.relu())


def test_mpm_gradients_reach_every_parameter():
    mpm = MPM(16, pool_sizes=(4, 2)).train()
    (mpm(torch.randn(2, 16, 9, 11)) * torch.randn(2, 16, 9, 11)).sum().backward()
    for name, param in mpm.named_parameters():
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), name


def test_mpm_norm_switch():
    mpm = MPM(8, norm_cfg=dict(type='SyncBN'))
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in mpm.modules()) == 10
    assert not any(type(m) is torch.nn.BatchNorm2d for m in mpm.modules())
