# Copyright (c) mmaffseg contributors. All rights reserved.
"""LargeFOVHead (DeepLab v1) and ASPPV2Head (DeepLab v2) against plain-conv references."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmaffseg.models.decode_heads import ASPPV2Head, LargeFOVHead

NUM_CLASSES = 5


def _fc_reference(fc, x):
    """fc6 (3x3 atrous) -> ReLU -> fc7 (1x1) -> ReLU with plain F.conv2d (eval: no dropout)."""
    c6, c7 = fc.fc6.conv, fc.fc7.conv
    y = F.relu(F.conv2d(x, c6.weight, c6.bias, padding=c6.dilation, dilation=c6.dilation))
    return F.relu(F.conv2d(y, c7.weight, c7.bias))


def _samples(batch, hw):
    out = []
    for _ in range(batch):
        s = SegDataSample(metainfo=dict(img_shape=hw, pad_shape=hw))
        s.gt_sem_seg = PixelData(data=torch.randint(0, NUM_CLASSES, (1, ) + hw))
        out.append(s)
    return out


def test_largefov_equals_reference_and_paper_defaults():
    torch.manual_seed(0)
    head = LargeFOVHead(in_channels=16, channels=32, num_classes=NUM_CLASSES).eval()
    assert head.fc.fc6.conv.dilation == (12, 12) and head.fc.fc6.conv.kernel_size == (3, 3)
    assert head.fc.fc7.conv.kernel_size == (1, 1) and head.conv_seg.kernel_size == (1, 1)
    assert head.dropout is None and head.fc.dropout.p == 0.5
    x = torch.randn(2, 16, 11, 13)
    out = head([x])
    ref = F.conv2d(_fc_reference(head.fc, x), head.conv_seg.weight, head.conv_seg.bias)
    assert out.shape == (2, NUM_CLASSES, 11, 13)
    torch.testing.assert_close(out, ref)


def test_aspp_v2_resnet_form_is_sum_of_atrous_classifiers():
    torch.manual_seed(0)
    head = ASPPV2Head(in_channels=16, channels=16, num_classes=NUM_CLASSES).eval()
    assert head.dilations == (6, 12, 18, 24) and head.branches is None
    x = torch.randn(2, 16, 9, 14)
    ref = sum(
        F.conv2d(x, c.weight, c.bias, padding=d, dilation=d)
        for c, d in zip(head.conv_seg, (6, 12, 18, 24)))
    out = head([x])
    assert out.shape == (2, NUM_CLASSES, 9, 14)
    torch.testing.assert_close(out, ref)


def test_aspp_v2_vgg_form_is_sum_of_fc_branches():
    torch.manual_seed(0)
    head = ASPPV2Head(in_channels=8, channels=12, num_classes=NUM_CLASSES, fc_branches=True,
                      dropout_ratio=0.5, dilations=(2, 3)).eval()
    x = torch.randn(1, 8, 7, 10)
    ref = sum(
        F.conv2d(_fc_reference(b, x), c.weight, c.bias)
        for b, c in zip(head.branches, head.conv_seg))
    torch.testing.assert_close(head([x]), ref)


def test_conv_seg_init_covers_every_branch_classifier():
    torch.manual_seed(0)
    head = ASPPV2Head(in_channels=64, channels=64, num_classes=NUM_CLASSES)
    head.init_weights()
    for conv in head.conv_seg:
        assert 0.005 < conv.weight.std().item() < 0.02  # Normal(std=0.01)
        assert conv.bias.abs().max().item() == 0


@pytest.mark.parametrize('head_cfg', [
    dict(type=LargeFOVHead, dilation=3),
    dict(type=ASPPV2Head, dilations=(1, 2)),
    dict(type=ASPPV2Head, dilations=(1, 2), fc_branches=True, dropout_ratio=0.5,
         norm_cfg=dict(type='BN')),
])
def test_loss_gradients_reach_every_parameter(head_cfg):
    torch.manual_seed(0)
    cfg = dict(head_cfg)
    head = cfg.pop('type')(in_channels=8, channels=8, num_classes=NUM_CLASSES, **cfg).train()
    feats = [torch.randn(2, 8, 5, 7)]
    losses = head.loss(feats, _samples(2, (37, 53)), train_cfg=None)
    assert set(losses) == {'loss_ce', 'acc_seg'}
    losses['loss_ce'].backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_predict_resizes_to_image():
    head = ASPPV2Head(in_channels=8, channels=8, num_classes=NUM_CLASSES).eval()
    metas = [dict(img_shape=(41, 59))]
    out = head.predict([torch.randn(1, 8, 6, 8)], metas, test_cfg=None)
    assert out.shape == (1, NUM_CLASSES, 41, 59)


def test_bad_arguments():
    with pytest.raises(ValueError, match='needs fc_branches=True'):
        ASPPV2Head(in_channels=8, channels=8, num_classes=3, dropout_ratio=0.1)
    with pytest.raises(ValueError, match='dilations must be a non-empty sequence'):
        ASPPV2Head(in_channels=8, channels=8, num_classes=3, dilations=())
    with pytest.raises(ValueError, match='dilations must be a non-empty sequence'):
        ASPPV2Head(in_channels=8, channels=8, num_classes=3, dilations=(6, 0))
    with pytest.raises(ValueError, match='dilation must be a positive integer'):
        LargeFOVHead(in_channels=8, channels=8, num_classes=3, dilation=0)
    with pytest.raises(ValueError, match=r'dropout_ratio must be in \[0, 1\)'):
        LargeFOVHead(in_channels=8, channels=8, num_classes=3, dropout_ratio=1.0)
    with pytest.raises(ValueError, match='takes one feature map'):
        LargeFOVHead(in_channels=[8, 8], channels=8, num_classes=3, in_index=[0, 1],
                     input_transform='multiple_select')
