# Copyright (c) mmaffseg contributors. All rights reserved.
"""HANetNeck: which outputs are re-weighted, from which inputs; errors; gradients; norms."""
import pytest
import torch
import torch.nn as nn

from mmaffseg.models.necks import HANetNeck

CHANNELS = [6, 10, 16, 24]


def _inputs(batch=2):
    g = torch.Generator().manual_seed(0)
    return [
        torch.randn(batch, c, h, w, generator=g)
        for c, (h, w) in zip(CHANNELS, ((17, 25), (9, 13), (9, 13), (5, 7)))
    ]


def test_default_pair_reweights_last_stage_only():
    neck = HANetNeck(CHANNELS, hanet_cfg=dict(reduction=4)).eval()
    inputs, rows = _inputs(), torch.randint(0, 128, (2, 67))
    outs = neck(inputs, rows)
    assert len(outs) == 4 and all(o is i for o, i in zip(outs[:3], inputs[:3]))
    torch.testing.assert_close(outs[3], neck.hanets[0](inputs[2], inputs[3], rows))
    assert outs[3].shape == inputs[3].shape


def test_pairs_use_the_backbone_outputs_as_lower_maps():
    neck = HANetNeck(CHANNELS, pairs=[(0, 1), (1, 2), (0, 3)],
                     hanet_cfg=dict(reduction=2)).eval()
    inputs = _inputs()
    outs = neck(inputs)
    hanets = neck.hanets
    torch.testing.assert_close(outs[1], hanets[0](inputs[0], inputs[1]))
    # the lower map of (1, 2) is stage 1 as the backbone gave it, not its re-weighted version
    torch.testing.assert_close(outs[2], hanets[1](inputs[1], inputs[2]))
    torch.testing.assert_close(outs[3], hanets[2](inputs[0], inputs[3]))
    assert outs[0] is inputs[0]


@pytest.mark.parametrize('pairs,match', [
    ([(3, 2)], r'must satisfy 0 <= lower < higher < 4'),
    ([(1, 4)], r'must satisfy 0 <= lower < higher < 4'),
    ([(1, 2, 3)], r'must be \(lower, higher\)'),
])
def test_invalid_pairs(pairs, match):
    with pytest.raises(ValueError, match=match):
        HANetNeck(CHANNELS, pairs=pairs, hanet_cfg=dict(reduction=2))


def test_input_count_and_channel_mismatch():
    neck = HANetNeck(CHANNELS, hanet_cfg=dict(reduction=2))
    with pytest.raises(ValueError, match='built for 4 backbone outputs'):
        neck(_inputs()[:3])
    wrong = HANetNeck([6, 10, 12, 24], hanet_cfg=dict(reduction=2))
    with pytest.raises(ValueError, match=r'in_channels=12'):
        wrong(_inputs())


def test_gradients_and_norm_switch():
    neck = HANetNeck(CHANNELS, pairs=[(1, 2), (2, 3)], hanet_cfg=dict(reduction=2),
                     norm_cfg=dict(type='BN')).train()
    sum(o.square().sum() for o in neck(_inputs(), torch.randint(0, 128, (2, 40)))).backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    sync = HANetNeck(CHANNELS, hanet_cfg=dict(reduction=2),
                     norm_cfg=dict(type='SyncBN', requires_grad=True))
    assert any(isinstance(m, nn.SyncBatchNorm) for m in sync.modules())
    assert sync.eval()(_inputs())[3].shape == (2, 24, 5, 7)
