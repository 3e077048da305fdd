# Copyright (c) mmaffseg contributors. All rights reserved.
"""The semantic-features configs: the paper's optimiser in the Cityscapes one, and the
quick-start pipeline delivering instance maps from the synthetic dataset."""
import os.path as osp

import numpy as np
import torch
from helpers import tiny_synthetic_overrides
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

import mmaffseg  # noqa: F401  (registers the modules)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FOLDER = osp.join(REPO, 'configs', 'semantic_features')
CITYSCAPES = osp.join(FOLDER, 'semantic-features_r101-d8_4xb2-80k_cityscapes-512x1024.py')
QUICKSTART = osp.join(FOLDER, 'semantic-features_r18_quickstart_synthetic-128x256.py')


def test_cityscapes_config_uses_the_papers_optimiser():
    cfg = Config.fromfile(CITYSCAPES)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    head = model.decode_head
    assert [t.conv.out_channels for t in head.taps] == [4, 124, 128, 256, 512]
    assert head.embed_dims == 128 and head.output_stride == 1
    loss = head.loss_decode
    assert (loss.num_instances, loss.num_pixels, loss.num_resamples, loss.form) == \
        (3, 1000, 10, 'paper')
    assert loss.normalization in (None, 'points')  # the paper's 1/|P|, which the lr is for
    assert model.backbone.backbone.depth == 101
    assert cfg.model.pretrained == 'open-mmlab://resnet101_v1c'
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    optimizer = wrapper.optimizer
    assert type(optimizer).__name__ == 'SGD'
    lrs = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        assert group['momentum'] == 0.9
        for p in group['params']:
            lrs[names[id(p)].split('.')[0]] = group['lr']
    assert lrs == {'backbone': 5e-4, 'decode_head': 5e-3}
    assert [s['type'] for s in cfg.param_scheduler] == ['PolyLR']
    assert cfg.param_scheduler[0]['power'] == 0.9 and cfg.optimizer.weight_decay == 5e-4
    assert cfg.val_evaluator == dict(type='PairRankingMetric', num_samples=1000, seed=0)


def test_quickstart_pipeline_packs_instance_maps(tiny_synthetic_root):
    cfg = Config.fromfile(QUICKSTART)
    cfg.merge_from_dict(tiny_synthetic_overrides(tiny_synthetic_root))
    init_default_scope('mmseg')
    np.random.seed(0)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    for i in range(3):
        sample = dataset[i]['data_samples']
        inst = sample.gt_instance_map.data[0]
        sem = sample.gt_sem_seg.data[0]
        assert inst.shape == sem.shape == (128, 256)
        assert torch.equal(inst == 255, sem == 255)
        things = (inst > 0) & (inst != 255)
        assert things.any()  # the synthetic scenes have instances
        assert (sem[things] >= 11).all()  # only Cityscapes thing classes (trainId 11..18)
    val = DATASETS.build(cfg.val_dataloader.dataset)[0]['data_samples']
    assert val.gt_instance_map.data.shape == val.gt_sem_seg.data.shape
