# Copyright (c) mmaffseg contributors. All rights reserved.
"""PSASegHead: two dilated 3x3 convs, checked against F.conv2d; shapes; gradients; errors."""
import pytest
import torch
import torch.nn.functional as F

import mmaffseg  # noqa: F401
from mmaffseg.models.decode_heads import PSASegHead


def head(**kwargs):
    cfg = dict(in_channels=6, channels=5, num_classes=3, dilation=2, dropout_ratio=0)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return PSASegHead(**cfg)


def test_matches_two_dilated_convs():
    h = head().eval()
    x = torch.randn(2, 6, 7, 9)
    conv = h.conv.conv
    ref = F.conv2d(F.relu(F.conv2d(x, conv.weight, conv.bias, padding=2, dilation=2)),
                   h.conv_seg.weight, h.conv_seg.bias, padding=2, dilation=2)
    torch.testing.assert_close(h([x]), ref)
    assert conv.bias is not None and conv.kernel_size == h.conv_seg.kernel_size == (3, 3)
    assert h.conv_seg.dilation == (2, 2)


@pytest.mark.parametrize('size', [(5, 5), (13, 11), (1, 3)])
def test_odd_sizes_keep_the_grid(size):
    h = head(dilation=12, in_index=1)
    out = h([torch.randn(1, 2, 4, 4), torch.randn(1, 6, *size)])
    assert out.shape == (1, 3, *size)


def test_gradients_reach_every_parameter():
    h = head(norm_cfg=dict(type='BN')).train()
    h([torch.randn(2, 6, 6, 6)]).square().mean().backward()
    for name, p in h.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_one_input_map_only():
    with pytest.raises(ValueError, match='takes one feature map'):
        head(in_channels=[6, 6], in_index=[0, 1], input_transform='resize_concat')
