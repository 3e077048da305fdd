# Copyright (c) mmaffseg contributors. All rights reserved.
"""HANet module: shapes, a step-by-step reference, gradients, norm switch, errors, positions."""
import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmaffseg.models.layers import HANet, HeightPositionalEncoding, sinusoid_table


def _positions(batch: int, height: int, seed: int = 0) -> torch.Tensor:
    """Increasing row bins of a random crop of a 128-bin frame, shape (batch, height)."""
    g = torch.Generator().manual_seed(seed)
    top = torch.randint(0, 128 - height // 2, (batch, 1), generator=g)
    return (top + torch.arange(height) // 2).clamp(max=127)


@pytest.mark.parametrize('num_convs,pos_injection,pooling,encoding', [
    (3, 2, 'mean', 'sinusoid'),
    (2, 1, 'max', 'learned'),
    (3, None, 'mean', 'sinusoid'),
])
def test_shapes_at_odd_sizes(num_convs, pos_injection, pooling, encoding):
    m = HANet(40, 24, reduction=3, kernel_size=5, num_convs=num_convs,
              pos_injection=pos_injection, pooling=pooling, pos_encoding=encoding).eval()
    x_lower, x = torch.randn(3, 40, 17, 13), torch.randn(3, 24, 23, 11)
    out = m(x_lower, x, _positions(3, 37))
    assert out.shape == x.shape
    attention = m.attention(x_lower, 23, _positions(3, 37))
    assert attention.shape == (3, 24, 23)
    assert ((attention > 0) & (attention < 1)).all()
    torch.testing.assert_close(out, x * attention[..., None])
    assert m.conv_reduce.conv.out_channels == math.ceil(40 / 3)


def test_matches_step_by_step_reference():
    """pos_injection 1, two convs, max pooling (paths the golden fixtures do not cover)."""
    torch.manual_seed(0)
    m = HANet(12, 10, reduction=4, num_convs=2, pos_injection=1, pooling='max',
              pos_rfactor=16).eval()
    for bn in [m.conv_reduce.bn]:
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    x_lower, x = torch.randn(2, 12, 19, 7), torch.randn(2, 10, 9, 5)
    rows = _positions(2, 40)
    with torch.no_grad():
        col = x_lower.amax(dim=3)  # (B, 12, 19)
        # adaptive max pool over rows to 128 // 16 = 8 bins
        col = torch.stack([
            col[:, :, (i * 19) // 8:-((-(i + 1) * 19) // 8)].amax(dim=2) for i in range(8)
        ], dim=2)
        bands = (rows // 16)[:, [(j * 40) // 8 for j in range(8)]]  # nearest sampling
        col = col + (sinusoid_table(9, 12) + 1)[bands].transpose(1, 2)
        bn = m.conv_reduce.bn
        col = F.conv1d(col, m.conv_reduce.conv.weight)
        col = (col - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps)
        col = torch.relu(col * bn.weight[:, None] + bn.bias[:, None])
        gates = torch.sigmoid(F.conv1d(col, m.conv_attention.weight, m.conv_attention.bias,
                                       padding=1))
        gates = F.interpolate(gates, size=9, mode='linear', align_corners=False)
        torch.testing.assert_close(m(x_lower, x, rows), x * gates[..., None])


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    m = HANet(16, 8, reduction=2, pos_encoding='learned', dropout_ratio=0.1).train()
    x_lower = torch.randn(4, 16, 11, 9, requires_grad=True)
    out = m(x_lower, torch.randn(4, 8, 7, 6), _positions(4, 44))
    out.square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x_lower.grad.abs().sum() > 0


@pytest.mark.parametrize('norm_cfg,expected', [
    (dict(type='BN'), nn.BatchNorm1d),
    (dict(type='BN1d'), nn.BatchNorm1d),
    (dict(type='SyncBN', requires_grad=True), nn.SyncBatchNorm),
    (dict(type='GN', num_groups=1), nn.GroupNorm),
])
def test_norm_cfg_switch(norm_cfg, expected):
    m = HANet(16, 8, reduction=4, norm_cfg=norm_cfg).eval()
    assert isinstance(m.conv_reduce.bn if hasattr(m.conv_reduce, 'bn') else m.conv_reduce.gn,
                      expected)
    assert m(torch.randn(2, 16, 8, 8), torch.randn(2, 8, 8, 8)).shape == (2, 8, 8, 8)


@pytest.mark.parametrize('kwargs,match', [
    (dict(reduction=32), r'reduction r must be an int in \[1, in_channels=16\]'),
    (dict(reduction=0), r'reduction r must be an int'),
    (dict(num_convs=4), 'num_convs must be 2 or 3'),
    (dict(kernel_size=4), 'kernel_size must be odd'),
    (dict(pooling='median'), "pooling must be 'mean' or 'max'"),
    (dict(pos_injection=3), 'pos_injection must be 1'),
    (dict(pos_encoding='rope'), "pos_encoding must be 'sinusoid' or 'learned'"),
    (dict(pos_rfactor=0), r'pos_rfactor must be an int in \[1, 128\]'),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HANet(16, 8, **dict(dict(reduction=4), **kwargs))


def test_channel_mismatch_errors():
    m = HANet(16, 8, reduction=4)
    with pytest.raises(ValueError, match=r'lower-level map as \(B, in_channels=16.*got shape '
                       r'\(2, 12, 8, 8\)'):
        m(torch.randn(2, 12, 8, 8), torch.randn(2, 8, 8, 8))
    with pytest.raises(ValueError, match=r'out_channels=8.*got shape \(2, 6, 8, 8\)'):
        m(torch.randn(2, 16, 8, 8), torch.randn(2, 6, 8, 8))


def test_sinusoid_table_brute_force():
    for dim in (5, 50, 51, 64):
        cycle = 10 if dim > 50 else 100
        ref = torch.tensor([[
            (math.sin if j % 2 == 0 else math.cos)(p / cycle**(2 * (j // 2) / dim))
            for j in range(dim)
        ] for p in range(17)])
        torch.testing.assert_close(sinusoid_table(17, dim), ref.float(), rtol=0, atol=1e-6)


def test_band_index_follows_official_sampling():
    enc = HeightPositionalEncoding(8, pos_rfactor=8).eval()
    rows = _positions(3, 53, seed=1)
    index = enc.band_index(rows, 16, 3, torch.device('cpu'))
    ref = torch.stack([rows[:, (j * 53) // 16] // 8 for j in range(16)], dim=1)
    assert torch.equal(index, ref)
    # frozen table: a buffer, saved with the weights
    assert 'table' in dict(enc.named_buffers()) and not list(enc.parameters())


def test_position_noise_only_in_training():
    enc = HeightPositionalEncoding(8, pos_rfactor=8, pos_noise=0.5)
    rows = torch.arange(128)[None].expand(64, 128)
    clean = enc.eval().band_index(rows, 16, 64, torch.device('cpu'))
    assert torch.equal(clean, torch.arange(16)[None].expand(64, 16))
    torch.manual_seed(0)
    noisy = enc.train().band_index(rows, 16, 64, torch.device('cpu'))
    shift = noisy - clean
    assert noisy.min() >= 0 and noisy.max() <= 16  # clamped to the 17-row table
    assert shift.abs().max() <= 2  # clamp(floor(N(0, 0.5)), -2, 2)
    # floor(N(0, 0.5)) is -1 or 0 with probability 0.477 each, -2 or +1 with 0.023 each
    inner = shift[:, 2:14]  # away from the clamped ends
    for value, low, high in ((-1, 0.4, 0.55), (0, 0.4, 0.55), (-2, 0.0, 0.06), (1, 0.0, 0.06)):
        assert low <= (inner == value).float().mean() <= high, value


def test_relative_fallback_warns_once(monkeypatch):
    monkeypatch.setattr(HeightPositionalEncoding, '_warned_relative', False)
    m = HANet(16, 8, reduction=4).eval()
    x_lower, x = torch.randn(2, 16, 9, 9), torch.randn(2, 8, 9, 9)
    with pytest.warns(UserWarning, match='no absolute row positions'):
        out = m(x_lower, x)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        m(x_lower, x)
    # crop-relative rows: band l of 16 = a crop spanning the whole 128-bin frame
    torch.testing.assert_close(out, m(x_lower, x, torch.arange(128)[None].expand(2, 128)))
