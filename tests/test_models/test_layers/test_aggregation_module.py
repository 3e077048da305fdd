# Copyright (c) mmaffseg contributors. All rights reserved.
"""CPNet aggregation module: shapes, separable branches, gradients, norm switch, errors."""
import pytest
import torch

from mmaffseg.models.layers import AggregationModule


@pytest.mark.parametrize('size', [(1, 1), (7, 5), (12, 17)])
def test_shape(size):
    am = AggregationModule(6, 4, kernel_size=5).eval()
    assert am(torch.randn(2, 6, *size)).shape == (2, 4, *size)


def test_branches_are_depthwise_separable():
    am = AggregationModule(6, 4, kernel_size=7)
    kernels = [c.conv.weight.shape for c in [*am.vertical_first, *am.horizontal_first]]
    assert kernels == [(4, 1, 7, 1), (4, 1, 1, 7), (4, 1, 1, 7), (4, 1, 7, 1)]
    assert all(c.conv.bias is not None for c in [*am.vertical_first, *am.horizontal_first])


def test_gradients_reach_every_parameter():
    am = AggregationModule(6, 4, kernel_size=3).train()
    (am(torch.randn(2, 6, 8, 9)) * torch.randn(2, 4, 8, 9)).sum().backward()
    for name, param in am.named_parameters():
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), name


def test_norm_switch_and_errors():
    am = AggregationModule(6, 4, norm_cfg=dict(type='SyncBN'))
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in am.modules()) == 2
    with pytest.raises(ValueError, match='kernel_size must be odd'):
        AggregationModule(6, 4, kernel_size=4)
