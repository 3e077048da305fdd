# Copyright (c) mmaffseg contributors. All rights reserved.
"""Every HANet config builds and computes a loss on a tiny batch; the quick-start pipeline
records crop offsets on real (tiny synthetic) data and trains one step from it."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from helpers import TINY_HW, tiny_synthetic_overrides
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

from mmaffseg.models.layers import HANet

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'hanet', '*.py')))
QUICKSTART = osp.join(REPO, 'configs', 'hanet', 'hanet_r18-d16_quickstart_synthetic-128x256.py')
TINY = (48, 64)


def _build(path):
    cfg = Config.fromfile(path)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.pretrained = None  # no download
    cfg.model.data_preprocessor.size = None
    return cfg, revert_sync_batchnorm(MODELS.build(cfg.model))


def test_all_configs_found():
    names = {osp.basename(c) for c in CONFIGS}
    assert {'hanet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
            'hanet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
            'deeplabv3plus-hanet-neck_r50-d8_4xb2-80k_cityscapes-512x1024.py',
            'hanet_r18-d16_quickstart_synthetic-128x256.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_config_builds_and_computes_loss(path):
    cfg, model = _build(path)
    assert cfg.model.type == 'HANetEncoderDecoder'
    pipeline_types = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert 'RandomCropWithOffset' in pipeline_types and 'RandomCrop' not in pipeline_types
    assert 'crop_offset' in cfg.train_dataloader.dataset.pipeline[-1]['meta_keys']
    assert any(isinstance(m, HANet) for m in model.modules())
    rng = np.random.default_rng(0)
    samples = []
    for top in (0, 200):
        s = SegDataSample(metainfo=dict(ori_shape=(1024, 2048), img_shape=TINY, pad_shape=TINY,
                                        scale_factor=(0.5, 0.5), crop_offset=(top, 0)))
        s.gt_sem_seg = PixelData(data=torch.from_numpy(rng.integers(0, 19, (1, ) + TINY)))
        samples.append(s)
    model.train()
    losses = model.loss(torch.randn(2, 3, *TINY), samples)
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)


def test_quickstart_pipeline_records_offsets_and_trains(tiny_synthetic_root):
    cfg = Config.fromfile(QUICKSTART)
    cfg.merge_from_dict(tiny_synthetic_overrides(tiny_synthetic_root))
    init_default_scope('mmseg')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    for sample in batch['data_samples']:
        assert 'crop_offset' in sample.metainfo and 'scale_factor' in sample.metainfo
    cfg.model.data_preprocessor.size = TINY_HW  # the tiny images are smaller than the crop
    model = MODELS.build(cfg.model).train()
    data = model.data_preprocessor(batch, True)
    losses = model.loss(**data)
    assert torch.isfinite(losses['decode.loss_ce'])
