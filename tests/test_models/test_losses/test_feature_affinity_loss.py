# Copyright (c) mmaffseg contributors. All rights reserved.
"""DSRL feature affinity loss against a naive per-sample, per-pair implementation."""
import math

import pytest
import torch
from fa_reference import naive_fa
from mmseg.registry import MODELS

from mmaffseg.models.losses import FeatureAffinityLoss
from mmaffseg.models.losses.feature_affinity_loss import feature_affinity_loss


def _maps(batch, seed, hw=(8, 12), c_seg=5, c_sr=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, c_seg, *hw, generator=g),
            torch.randn(batch, c_sr, *hw, generator=g))


@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('k,mode', [(2, 'avg'), (4, 'stride'), (1, 'avg')])
def test_fa_loss_equals_naive_double_loop(batch, k, mode):
    seg, sr = _maps(batch, seed=batch * 10 + k)
    loss = FeatureAffinityLoss(subsample_factor=1 / k, subsample_mode=mode, reduction='none')
    per_sample = loss(seg, sr)
    ref = naive_fa(seg, sr, k, mode)
    assert per_sample.shape == (batch, )
    torch.testing.assert_close(per_sample.double(), ref, rtol=1e-5, atol=1e-6)
    mean = FeatureAffinityLoss(subsample_factor=1 / k, subsample_mode=mode)(seg, sr)
    assert mean.item() == pytest.approx(ref.mean().item(), rel=1e-5)
    if batch > 1:  # different samples give different values: the loss is per sample
        assert len({round(v, 6) for v in ref.tolist()}) == batch


def test_fa_loss_is_independent_of_batch_composition():
    seg, sr = _maps(3, seed=7)
    loss = FeatureAffinityLoss(subsample_factor=1 / 2, reduction='none')
    together = loss(seg, sr)
    alone = torch.cat([loss(seg[i:i + 1], sr[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone)
    # 'mean' does not grow with the batch (the unofficial port's sum over the batch did)
    mean_loss = FeatureAffinityLoss(subsample_factor=1 / 2)
    repeated = mean_loss(seg[:1].repeat(4, 1, 1, 1), sr[:1].repeat(4, 1, 1, 1))
    assert repeated.item() == pytest.approx(alone[0].item(), rel=1e-5)
    summed = FeatureAffinityLoss(subsample_factor=1 / 2, reduction='sum')(seg, sr)
    assert summed.item() == pytest.approx(together.sum().item(), rel=1e-5)


def test_fa_loss_zero_for_same_structure_and_weighting():
    seg, _ = _maps(2, seed=3, c_seg=4)
    # a positive rescaling of every vector keeps all cosine similarities
    assert FeatureAffinityLoss(1 / 2)(seg, 3.0 * seg).item() == pytest.approx(0.0, abs=1e-6)
    seg, sr = _maps(2, seed=4)
    base = FeatureAffinityLoss(1 / 2)(seg, sr)
    weighted = MODELS.build(dict(type='FeatureAffinityLoss', subsample_factor=1 / 2,
                                 loss_weight=2.5))
    assert weighted(seg, sr).item() == pytest.approx(2.5 * base.item(), rel=1e-6)
    assert weighted.loss_name == 'loss_fa'


def test_chunked_fa_loss_matches_whole_matrices_value_and_gradient():
    seg, sr = _maps(2, seed=5, hw=(8, 10))
    grads = []
    values = []
    for chunk in (None, 7, 1):
        a = seg.clone().requires_grad_(True)
        b = sr.clone().requires_grad_(True)
        value = feature_affinity_loss(a, b, subsample_factor=1 / 2, chunk_size=chunk)
        value.sum().backward()
        values.append(value.detach())
        grads.append((a.grad, b.grad))
    for value, (ga, gb) in zip(values[1:], grads[1:]):
        torch.testing.assert_close(value, values[0])
        torch.testing.assert_close(ga, grads[0][0])
        torch.testing.assert_close(gb, grads[0][1])


def test_fa_loss_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match=r'1/k for an integer k >= 1 \(e.g. 1/8\), got 0.3'):
        FeatureAffinityLoss(subsample_factor=0.3)
    with pytest.raises(ValueError, match='1/k for an integer k >= 1, got 2'):
        FeatureAffinityLoss(subsample_factor=2)
    with pytest.raises(ValueError, match="subsample_mode must be one of"):
        FeatureAffinityLoss(subsample_mode='max')
    seg, sr = _maps(1, seed=6, hw=(12, 20))
    with pytest.raises(ValueError, match=r'divisible by 8, got 12x20\. Change subsample_factor'):
        FeatureAffinityLoss(subsample_factor=1 / 8)(seg, sr)
    with pytest.raises(ValueError, match='same batch size and spatial size'):
        FeatureAffinityLoss(subsample_factor=1 / 2)(seg, sr[..., :10])
    with pytest.raises(ValueError, match='chunk_size must be a positive integer'):
        feature_affinity_loss(seg, sr, 1 / 2, chunk_size=0)


def test_subsample_factor_accepts_float_reciprocals():
    seg, sr = _maps(1, seed=8, hw=(6, 6))
    # 1/3 is not exactly representable; it must still mean k = 3
    value = FeatureAffinityLoss(subsample_factor=1 / 3, reduction='none')(seg, sr)
    torch.testing.assert_close(value.double(), naive_fa(seg, sr, 3), rtol=1e-5, atol=1e-6)
    assert math.isfinite(value.item())


def _padded_maps(img_shapes, seed, hw=(12, 16), c_seg=5, c_sr=3):
    """Feature maps whose padding (outside each sample's img_shape) holds large values, and
    the (B, 1, H, W) valid mask of the DSRL segmentor."""
    seg, sr = _maps(len(img_shapes), seed, hw, c_seg, c_sr)
    mask = torch.zeros(len(img_shapes), 1, *hw)
    for i, (h, w) in enumerate(img_shapes):
        mask[i, :, :h, :w] = 1
    g = torch.Generator().manual_seed(seed + 1)
    seg = torch.where(mask > 0, seg, 50 * torch.randn(seg.shape, generator=g))
    sr = torch.where(mask > 0, sr, 50 * torch.randn(sr.shape, generator=g) + 20)
    return seg, sr, mask


# full map; partly valid cells at the bottom and right edges (k = 4); a single cell
PADDED_SHAPES = [(12, 16), (7, 10), (3, 2)]


@pytest.mark.parametrize('k,mode', [(4, 'avg'), (4, 'stride'), (2, 'avg'), (1, 'avg')])
@pytest.mark.parametrize('chunk', [None, 5])
def test_fa_loss_with_padding_equals_naive_on_valid_positions(k, mode, chunk):
    """With a valid mask the loss is the FA formula over each sample's valid cells only."""
    seg, sr, mask = _padded_maps(PADDED_SHAPES, seed=20 + k)
    loss = FeatureAffinityLoss(subsample_factor=1 / k, subsample_mode=mode, chunk_size=chunk,
                               reduction='none')
    per_sample = loss(seg, sr, valid_mask=mask)
    ref = naive_fa(seg, sr, k, mode, PADDED_SHAPES)
    torch.testing.assert_close(per_sample.double(), ref, rtol=1e-5, atol=1e-6)
    # a (B, H, W) or boolean mask means the same
    torch.testing.assert_close(loss(seg, sr, valid_mask=mask[:, 0] > 0), per_sample)
    # the unmasked loss is a different number here: the padding would dominate it
    assert not torch.allclose(loss(seg, sr)[1:].double(), ref[1:], rtol=1e-2)


def test_fa_loss_ignores_padding_values_and_sends_them_no_gradient():
    seg, sr, mask = _padded_maps(PADDED_SHAPES, seed=30)
    seg.requires_grad_(True)
    sr.requires_grad_(True)
    value = feature_affinity_loss(seg, sr, 1 / 4, valid_mask=mask)
    value.sum().backward()
    assert torch.isfinite(value).all()
    pad = (mask == 0).squeeze(1)  # (B, H, W)
    for grad in (seg.grad, sr.grad):
        assert grad.permute(1, 0, 2, 3)[:, pad].abs().max() == 0
        assert grad.permute(1, 0, 2, 3)[:, ~pad].abs().sum() > 0
    other_seg = torch.where(mask > 0, seg.detach(), -seg.detach())
    other_sr = torch.where(mask > 0, sr.detach(), torch.zeros_like(sr))
    torch.testing.assert_close(feature_affinity_loss(other_seg, other_sr, 1 / 4, valid_mask=mask),
                               value.detach())
    # a full mask is the unmasked loss
    full = torch.ones_like(mask)
    torch.testing.assert_close(feature_affinity_loss(seg, sr, 1 / 4, valid_mask=full),
                               feature_affinity_loss(seg, sr, 1 / 4))


def test_fa_loss_bad_valid_mask_fails_clearly():
    seg, sr, mask = _padded_maps(PADDED_SHAPES, seed=31)
    with pytest.raises(ValueError, match=r'valid_mask must have shape \(B, 1, H, W\)'):
        feature_affinity_loss(seg, sr, 1 / 4, valid_mask=mask[:, :, :8])
    with pytest.raises(ValueError, match='valid_mask must have shape'):
        feature_affinity_loss(seg, sr, 1 / 4, valid_mask=mask[:2])
