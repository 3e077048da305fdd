# Copyright (c) mmaffseg contributors. All rights reserved.
"""Every SPNet / CPNet config builds and computes its losses on a tiny batch (the quick-start
ones also take a backward pass and a slide/whole inference); the strict CPNet configs keep
prior grid, training crop and slide window consistent. R-101 configs differ from the R-50 ones
only in depth and are marked slow."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from seg_batch import random_seg_batch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'spnet', '*.py')) +
                 glob.glob(osp.join(REPO, 'configs', 'cpnet', '*.py')))
TINY = (32, 48)  # a stride-8 map of 4 x 6


def test_configs_found():
    names = {osp.basename(c) for c in CONFIGS}
    for method in ('spnet', 'cpnet'):
        for depth in (50, 101):
            assert f'{method}_r{depth}-d8_4xb2-80k_cityscapes-512x1024.py' in names
        assert f'{method}_r50-d8-slim_quickstart_synthetic-128x256.py' in names
    assert 'deeplabv3plus-spm_r50-d8_4xb2-80k_cityscapes-512x1024.py' in names
    assert 'pspnet-cphead_r50-d8_4xb2-80k_cityscapes-512x1024.py' in names


def _params(paths):
    return [pytest.param(p, marks=pytest.mark.slow) if '_r101-' in p else p for p in paths]


@pytest.mark.parametrize('path', _params(CONFIGS), ids=osp.basename)
def test_config_builds_and_computes_losses(path):
    torch.manual_seed(0)
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.pretrained = None
    cfg.model.data_preprocessor.size = TINY
    head = cfg.model.decode_head
    if head.type == 'CPHead':
        # strict configs' grids match their crops (checked below); the tiny batch needs its
        # own grid, and a small one keeps the resize-mode example cheap
        head.prior_size = (TINY[0] // 8, TINY[1] // 8)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.train()
    data = model.data_preprocessor(random_seg_batch(head.num_classes, TINY), True)
    quickstart = 'quickstart' in path
    with torch.set_grad_enabled(quickstart):
        losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    if head.type == 'CPHead':
        assert torch.isfinite(losses['decode.loss_prior'])
    if not quickstart:
        return
    total.backward()
    model.eval()
    with torch.no_grad():
        batch = random_seg_batch(head.num_classes, TINY, n=1)
        pred = model.test_step(model.data_preprocessor(batch, False))
    assert pred[0].pred_sem_seg.data.shape[1:] == TINY


@pytest.mark.parametrize('path', [c for c in CONFIGS if 'cpnet_' in osp.basename(c)],
                         ids=osp.basename)
def test_strict_cpnet_grid_matches_crop_and_slide_window(path):
    cfg = Config.fromfile(path)
    head, test_cfg = cfg.model.decode_head, cfg.model.test_cfg
    crop = tuple(cfg.crop_size)
    assert head.get('size_mode', 'strict') == 'strict'
    assert tuple(p * 8 for p in head.prior_size) == crop
    assert test_cfg.mode == 'slide' and tuple(test_cfg.crop_size) == crop
