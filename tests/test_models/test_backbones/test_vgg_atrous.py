# Copyright (c) mmaffseg contributors. All rights reserved.
"""VGGAtrous: DeepLab's OS8 VGG against a plain-torch rebuild of its prototxt, shapes, grads."""
import math

import pytest
import torch
import torch.nn as nn

from mmaffseg.models.backbones import VGGAtrous


def _deeplab_vgg16_reference(width: int) -> nn.Sequential:
    """DeepLab-LargeFOV's VGG-16 written out layer by layer (plain torch)."""
    layers, cin = [], 3
    plan = [(1, 2, 1, 2), (2, 2, 1, 2), (4, 3, 1, 2), (8, 3, 1, 1), (8, 3, 2, 1)]
    for mult, convs, dilation, pool_stride in plan:
        for _ in range(convs):
            layers += [nn.Conv2d(cin, width * mult, 3, padding=dilation, dilation=dilation),
                       nn.ReLU()]
            cin = width * mult
        layers.append(nn.MaxPool2d(3, stride=pool_stride, padding=1))
    layers.append(nn.AvgPool2d(3, stride=1, padding=1))  # pool5a
    return nn.Sequential(*layers)


def test_matches_deeplab_prototxt_rebuild():
    torch.manual_seed(0)
    ours = VGGAtrous(base_channels=4).eval()
    ref = _deeplab_vgg16_reference(4).eval()
    ref_convs = [m for m in ref if isinstance(m, nn.Conv2d)]
    our_convs = [m for m in ours.modules() if isinstance(m, nn.Conv2d)]
    assert len(ref_convs) == len(our_convs) == 13
    for r, o in zip(ref_convs, our_convs):
        r.load_state_dict(o.state_dict())
    x = torch.randn(1, 3, 37, 45)
    (out, ) = ours(x)
    torch.testing.assert_close(out, ref(x))


@pytest.mark.parametrize('hw', [(33, 47), (64, 96), (17, 9), (8, 8)])
def test_output_stride_8_at_odd_sizes(hw):
    h, w = hw
    model = VGGAtrous(base_channels=4, out_indices=(0, 1, 2, 3, 4)).eval()
    outs = model(torch.randn(2, 3, h, w))
    expect = [(math.ceil(h / s), math.ceil(w / s)) for s in (2, 4, 8, 8, 8)]
    assert [tuple(o.shape[2:]) for o in outs] == expect
    assert [o.shape[1] for o in outs] == [4, 8, 16, 32, 32]


def test_default_is_deeplab_vgg16():
    model = VGGAtrous()
    assert model.out_channels[-1] == 512
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.dilation for c in convs[-3:]] == [(2, 2)] * 3
    assert all(c.dilation == (1, 1) for c in convs[:-3])
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert [p.stride for p in pools] == [2, 2, 2, 1, 1]
    assert isinstance(model.stages[4][-1], nn.AvgPool2d)
    assert sum(p.numel() for p in model.parameters()) == 14714688  # VGG-16 conv layers
    (out, ) = model(torch.randn(1, 3, 24, 40))
    assert out.shape == (1, 512, 3, 5)


def test_other_strides_and_no_pool5a():
    model = VGGAtrous(base_channels=4, strides=(2, 2, 2, 2, 1), dilations=(1, 1, 1, 1, 1),
                      avg_pool5=False)
    assert not any(isinstance(m, nn.AvgPool2d) for m in model.modules())
    (out, ) = model(torch.randn(1, 3, 64, 48))
    assert out.shape[2:] == (4, 3)  # OS16


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = VGGAtrous(base_channels=4, norm_cfg=dict(type='BN'), out_indices=(2, 4)).train()
    outs = model(torch.randn(2, 3, 21, 27))
    sum(o.square().mean() for o in outs).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_norm_cfg_switch():
    bn = VGGAtrous(base_channels=4, norm_cfg=dict(type='BN'))
    sync = VGGAtrous(base_channels=4, norm_cfg=dict(type='SyncBN'))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 13
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in sync.modules()) == 13
    assert not any(isinstance(m, nn.BatchNorm2d) for m in VGGAtrous(base_channels=4).modules())


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth=17), r'depth must be one of \[11, 13, 16, 19\]'),
    (dict(strides=(2, 2, 2, 1)), r'strides must be 5 positive integers'),
    (dict(dilations=(1, 1, 1, 1, 0)), r'dilations must be 5 positive integers'),
    (dict(out_indices=(5, )), r'out_indices must be distinct stage indices in 0..4'),
    (dict(out_indices=()), r'out_indices must be distinct'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VGGAtrous(**kwargs)


def test_bad_input():
    with pytest.raises(ValueError, match=r'expects a \(B, C, H, W\) batch'):
        VGGAtrous(base_channels=4)(torch.randn(3, 16, 16))
