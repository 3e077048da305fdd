# Copyright (c) mmaffseg contributors. All rights reserved.
"""CPHead: strict size check with an actionable error, opt-in resize mode, prior map,
losses and gradients to every parameter, norm switch."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmaffseg  # noqa: F401 (registers the modules)


def _head(**kwargs):
    init_default_scope('mmseg')
    cfg = dict(type='CPHead', in_channels=16, channels=8, prior_channels=6, prior_size=(4, 5),
               am_kernel_size=3, num_classes=3)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _samples(batch, size, num_classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(batch):
        label = torch.randint(0, num_classes, (1, *size), generator=g)
        label[:, :2] = 255
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label)
        samples.append(s)
    return samples


def test_strict_mode_says_what_to_change():
    head = _head().eval()
    assert head([torch.randn(2, 16, 4, 5)]).shape == (2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"prior_size=\(4, 5\), got \(5, 5\).*"
                       r"mode='slide', crop_size=\(32, 40\).*size_mode='resize'"):
        head([torch.randn(2, 16, 5, 5)])


@pytest.mark.parametrize('size', [(1, 1), (3, 7), (9, 11)])
def test_resize_mode_any_size(size):
    head = _head(size_mode='resize').eval()
    logits, prior = head.forward_with_prior([torch.randn(2, 16, *size)])
    assert logits.shape == (2, 3, *size) and prior.shape == (2, 20, 20)
    assert bool(((prior >= 0) & (prior <= 1)).all())


def test_resize_mode_at_prior_size_equals_strict():
    torch.manual_seed(0)
    strict = _head().eval()
    resized = _head(size_mode='resize').eval()
    resized.load_state_dict(strict.state_dict())
    x = [torch.randn(2, 16, 4, 5)]
    torch.testing.assert_close(strict(x), resized(x))


def test_prior_map_layout_and_contexts():
    """P[b, i, j] is prior-conv channel j at cell i; inter context uses 1 - P."""
    torch.manual_seed(0)
    head = _head().eval()
    x = torch.randn(2, 16, 4, 5)
    _, prior = head.forward_with_prior([x])
    conv = head.prior_conv(head.aggregation(x)).sigmoid()  # (B, N, h, w)
    torch.testing.assert_close(prior[:, 7, 3], conv[:, 3, 1, 2])  # cell 7 = (1, 2)


@pytest.mark.parametrize('size_mode,feature', [('strict', (4, 5)), ('resize', (7, 9))])
def test_loss_and_gradients_reach_every_parameter(size_mode, feature):
    torch.manual_seed(0)
    head = _head(size_mode=size_mode).train()
    losses = head.loss([torch.randn(2, 16, *feature)], _samples(2, (33, 41), 3), None)
    assert set(losses) == {'loss_ce', 'acc_seg', 'loss_prior'}
    (losses['loss_ce'] + losses['loss_prior']).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), name


def test_prior_labels_keep_ignore_as_a_class():
    head = _head()
    label = torch.full((2, 1, 8, 10), 255)
    label[:, :, :4] = 1
    prior_label = head.prior_labels(label)
    assert prior_label.shape == (2, 20)
    assert set(prior_label.unique().tolist()) == {1, 255}


def test_norm_switch_and_errors():
    head = _head(norm_cfg=dict(type='SyncBN'))
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in head.modules()) == 6
    with pytest.raises(ValueError, match='size_mode must be one of'):
        _head(size_mode='pad')
