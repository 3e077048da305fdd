# Copyright (c) mmaffseg contributors. All rights reserved.
"""SPHead: official widths, shapes at odd sizes, losses and gradients, norm switch."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmaffseg.models.decode_heads import SPHead


def _samples(batch, size, num_classes):
    samples = []
    for _ in range(batch):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *size)))
        samples.append(s)
    return samples


def test_official_widths():
    head = SPHead(in_channels=64, channels=16, num_classes=5)
    assert head.reduce.conv.out_channels == 32 and len(head.mpms) == 2
    assert head.mpms[0].pool_sizes == (20, 12)
    assert head.bottleneck.conv.kernel_size == (3, 3) and head.conv_seg.out_channels == 5


@pytest.mark.parametrize('size', [(1, 1), (7, 9), (25, 13)])
def test_shapes(size):
    head = SPHead(in_channels=32, channels=8, num_classes=3, align_corners=True).eval()
    out = head([torch.randn(1, 16, 4, 4), torch.randn(2, 32, *size)])
    assert out.shape == (2, 3, *size)


def test_loss_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    head = SPHead(in_channels=32, channels=8, num_classes=4, pool_sizes=(3, 2)).train()
    losses = head.loss([torch.randn(2, 32, 9, 11)], _samples(2, (72, 88), 4), None)
    losses['loss_ce'].backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), name


def test_norm_switch_and_errors():
    head = SPHead(in_channels=32, channels=8, num_classes=3, norm_cfg=dict(type='SyncBN'))
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in head.modules()) == 2 + 2 * 10
    with pytest.raises(ValueError, match='one feature map'):
        SPHead(in_channels=[8, 8], channels=8, num_classes=3, in_index=[0, 1],
               input_transform='multiple_select')
