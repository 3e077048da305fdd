# Copyright (c) mmaffseg contributors. All rights reserved.
"""Every DeepLab v1 / v2 config builds, computes a loss on a tiny batch, and the CRF configs
predict end to end."""
import copy
import functools
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS
from seg_batch import random_seg_batch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'deeplabv1', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'deeplabv2', '*.py')))
CRF_CONFIGS = [c for c in CONFIGS if '-crf' in osp.basename(c)]
TINY = (40, 56)

try:
    import pydensecrf.densecrf  # noqa: F401
    HAS_CRF = True
except ImportError:
    HAS_CRF = False


pytestmark = pytest.mark.usefixtures('one_thread')


@functools.lru_cache(maxsize=None)
def _load(path):
    return Config.fromfile(path)  # parsing dominates this file's runtime: once per config


def _build(path):
    cfg = copy.deepcopy(_load(path))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    wrapped = cfg.model.type == 'CRFRefineSegmentor'
    seg_cfg = cfg.model.segmentor if wrapped else cfg.model
    seg_cfg.data_preprocessor.size = TINY  # pad tiny training batches to TINY, not the crop
    seg_cfg.pretrained = None  # no download
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    return cfg, seg_cfg, model


def _batch(num_classes, n=2, seed=0):
    return random_seg_batch(num_classes, TINY, n=n, seed=seed)


def test_configs_found():
    names = [osp.basename(c) for c in CONFIGS]
    assert 'deeplabv1-crf_vgg16-largefov_4xb2-80k_cityscapes-512x1024.py' in names
    assert 'deeplabv2-crf_r101-d8_4xb2-80k_cityscapes-512x1024.py' in names
    assert len(CRF_CONFIGS) * 2 == len(CONFIGS)  # every plain config has its CRF twin


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_and_computes_loss(path):
    torch.manual_seed(0)
    cfg, seg_cfg, model = _build(path)
    num_classes = seg_cfg.decode_head.num_classes
    dataset_cls = DATASETS.get(cfg.val_dataloader.dataset.type)
    assert len(dataset_cls.METAINFO['classes']) == num_classes
    model.train()
    data = model.data_preprocessor(_batch(num_classes), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['decode.loss_ce'])


@pytest.mark.parametrize('path', CRF_CONFIGS, ids=osp.basename)
def test_crf_configs_wrap_their_plain_twin(path):
    """The CRF settings of each config are pinned in test_crf_configs.py."""
    cfg = _load(path)
    plain = _load(path.replace('-crf', ''))
    assert cfg.model.segmentor.to_dict() == plain.model.to_dict()


@pytest.mark.skipif(not HAS_CRF, reason='pydensecrf is not installed')
@pytest.mark.parametrize('path', CRF_CONFIGS[:1] + CRF_CONFIGS[-1:], ids=osp.basename)
def test_crf_config_predicts_end_to_end(path):
    torch.manual_seed(0)
    _, seg_cfg, model = _build(path)
    model.eval()
    results = model.test_step(_batch(seg_cfg.decode_head.num_classes, n=1))
    assert results[0].pred_sem_seg.data.shape == (1, ) + TINY
    assert results[0].seg_logits.data.shape == (seg_cfg.decode_head.num_classes, ) + TINY


def test_crf_wraps_an_unchanged_mmseg_config(tmp_path):
    child = tmp_path / 'deeplabv3plus-crf.py'
    child.write_text(
        "_base_ = ['mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py',\n"
        "          'mmaffseg::_base_/models/deeplab_crf.py']\n"
        "custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)\n"
        "model = dict(_delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model,\n"
        "             crf=_base_.deeplab_crf)\n")
    cfg = Config.fromfile(str(child))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    assert type(model.segmentor.decode_head).__name__ == 'DepthwiseSeparableASPPHead'
    assert model.crf.bilateral_sxy == 121
