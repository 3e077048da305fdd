# Copyright (c) mmaffseg contributors. All rights reserved.
"""ResNetSP: SPM on chosen blocks (official default), norm follows the backbone, errors."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401 (registers the modules)
from mmaffseg.models.layers import SPM

SLIM = dict(type='ResNetSP', depth=50, base_channels=8, stem_channels=16)


def _spm_names(backbone):
    return sorted(n for n, m in backbone.named_modules() if isinstance(m, SPM))


def _build(**kwargs):
    init_default_scope('mmseg')
    return MODELS.build(dict(SLIM, **kwargs))


def test_official_placement_by_default():
    assert _spm_names(_build()) == ['layer1.2.spm', 'layer2.3.spm', 'layer3.5.spm',
                                    'layer4.0.spm', 'layer4.1.spm', 'layer4.2.spm']


def test_block_selections_and_extra_plugins():
    backbone = _build(
        spm_blocks=('none', [0, -1], 'all', 'last'),
        plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 4), position='after_conv3',
                      stages=(False, False, False, True))])
    assert _spm_names(backbone) == ['layer2.0.spm', 'layer2.3.spm'] + [
        f'layer3.{i}.spm' for i in range(6)] + ['layer4.2.spm']
    assert all(hasattr(block, 'context_block') for block in backbone.layer4)
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 33, 47))
    assert [o.shape[1] for o in outs] == [32, 64, 128, 256]


def test_spm_norm_follows_backbone():
    backbone = _build(norm_cfg=dict(type='SyncBN', requires_grad=True))
    spm = backbone.layer4[0].spm
    assert isinstance(spm.strip_pool.conv_h.bn, torch.nn.SyncBatchNorm)
    assert spm.in_channels == 64  # bottleneck width of stage 4 (8 * 2**3)


def test_gradients_reach_every_spm_parameter():
    backbone = _build(dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), contract_dilation=True,
                      multi_grid=(4, 8, 16))
    backbone.train()
    outs = backbone(torch.randn(2, 3, 33, 25))
    assert outs[-1].shape[2:] == (5, 4)  # output stride 8
    sum(o.mean() for o in outs).backward()
    for name, param in backbone.named_parameters():
        if '.spm.' in name:
            assert param.grad is not None and bool(param.grad.abs().sum() > 0), name


def test_errors():
    with pytest.raises(ValueError, match='one entry per stage'):
        _build(spm_blocks=('last', 'all'))
    with pytest.raises(ValueError, match='bottleneck blocks'):
        _build(depth=18)
    with pytest.raises(ValueError, match="'all', 'last', 'none'"):
        _build(spm_blocks=('last', 'last', 'first', 'all'))
