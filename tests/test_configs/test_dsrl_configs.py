# Copyright (c) mmaffseg contributors. All rights reserved.
"""Every config in configs/dsrl builds and takes one training step on random data; the DSRL
quick-start trains through tools/train.py."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
from helpers import tiny_synthetic_overrides
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmaffseg  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'dsrl', '*.py')))


def _random_batch(size, num_classes, n=2):
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8))
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *size), generator=g))
        sample.set_metainfo(dict(img_shape=size, ori_shape=size))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_configs_exist():
    names = {osp.basename(p) for p in CONFIGS}
    assert {'dsrl-deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py',
            'deeplabv3plus_r50-d8_4xb2-80k_cityscapes-half-512x1024.py',
            'dsrl-deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py',
            'deeplabv3plus_r18-d16_quickstart_synthetic-half-64x128.py'} <= names


def _record_dsrl_loss_inputs(model) -> dict:
    """Record what the decode, SISR and FA losses of a DSRL model receive."""
    seen = {}
    model.loss_sr.register_forward_hook(lambda mod, args, out: seen.__setitem__('sr', args[:2]))
    model.loss_fa.register_forward_hook(lambda mod, args, out: seen.__setitem__('fa', args[:2]))
    loss_by_feat = model.decode_head.loss_by_feat

    def record(seg_logits, samples):
        seen.update(seg=seg_logits, samples=samples)
        return loss_by_feat(seg_logits, samples)

    model.decode_head.loss_by_feat = record
    return seen


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_and_takes_one_train_step(path):
    cfg = Config.fromfile(path)
    model_cfg = cfg.model.to_dict()
    model_cfg['pretrained'] = None
    is_dsrl = model_cfg['type'] == 'DSRLEncoderDecoder'
    crop = tuple(cfg.crop_size)
    if is_dsrl:  # DSRL configs take full-resolution crops and halve them inside the model
        assert model_cfg['downsample_factor'] == 0.5
        assert tuple(model_cfg['data_preprocessor']['size']) == crop
    size = (64, 128) if is_dsrl else (32, 64)  # same network input (32x64) for both kinds
    model_cfg['data_preprocessor']['size'] = size
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))  # SyncBN needs a process group
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    seen = _record_dsrl_loss_inputs(model) if is_dsrl else {}
    log_vars = model.train_step(_random_batch(size, model.num_classes), optim)
    assert torch.isfinite(log_vars['loss'])
    if is_dsrl:
        assert {'dsrl.loss_sr', 'dsrl.loss_fa'} <= set(log_vars)
        # full-resolution targets: the SSSR logits (against the labels), the SISR
        # reconstruction and its target, and the FA maps all have the original batch size,
        # while the network sees half of it
        assert model.downsample(torch.zeros(1, 3, *size)).shape[2:] == (32, 64)
        assert seen['seg'].shape[2:] == size
        assert all(s.gt_sem_seg.shape == size for s in seen['samples'])
        assert [tuple(t.shape) for t in seen['sr']] == [(2, 3) + size] * 2
        assert all(t.shape[2:] == size for t in seen['fa'])
        model.eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 48, 96), mode='tensor').shape[2:] == (48, 96)


DSRL_CONFIGS = [p for p in CONFIGS if osp.basename(p).startswith('dsrl-')]
# the native image size (w, h) of each config's data, i.e. the original resolution
NATIVE_SCALE = {'CityscapesDataset': (2048, 1024), 'SyntheticCityscapesDataset': (512, 256)}


def test_every_dsrl_config_is_checked_below():
    assert len(DSRL_CONFIGS) == 2


@pytest.mark.parametrize('path', DSRL_CONFIGS, ids=osp.basename)
def test_dsrl_configs_use_the_papers_loss_weights_and_full_resolution_targets(path):
    """DSRL (CVPR 2020): L = L_ce + 0.1 L_mse + 1.0 L_fa, FA at 1/8, input x0.5, and the data
    kept at the original resolution (the built model's target sizes are checked in
    test_config_builds_and_takes_one_train_step)."""
    cfg = Config.fromfile(path)
    model_cfg = cfg.model
    assert model_cfg.loss_sr.type == 'ReconstructionMSELoss'
    assert model_cfg.loss_sr.loss_weight == 0.1
    assert model_cfg.loss_fa.type == 'FeatureAffinityLoss'
    assert model_cfg.loss_fa.loss_weight == 1.0
    assert model_cfg.loss_fa.subsample_factor == 1 / 8
    assert model_cfg.decode_head.loss_decode.loss_weight == 1.0
    assert model_cfg.downsample_factor == 0.5
    assert model_cfg.get('sssr_upsample_cfg') is None  # bilinear SSSR, see the README
    # the pipelines keep the original resolution: training crops are taken around the native
    # scale (the model halves them), validation images are not resized
    native = NATIVE_SCALE[cfg.train_dataloader.dataset.type]
    resize = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomResize']
    assert len(resize) == 1 and tuple(resize[0].scale) == native
    crop = [t for t in cfg.train_dataloader.dataset.pipeline if 'Crop' in t.type]
    assert tuple(crop[0].crop_size) == tuple(cfg.crop_size) == tuple(
        model_cfg.data_preprocessor.size)
    for t in cfg.val_dataloader.dataset.pipeline:
        if t.type == 'Resize':
            assert tuple(t.scale) == native


@pytest.mark.slow
def test_dsrl_quickstart_trains_through_tools_train(tiny_synthetic_root, tmp_path):
    config = 'configs/dsrl/dsrl-deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py'
    opts = tiny_synthetic_overrides(tiny_synthetic_root)
    opts.update({'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                 'default_hooks.logger.interval': 1, 'default_hooks.checkpoint.interval': 2,
                 'default_hooks.visualization.draw': False})
    args = [f'{k}=[{",".join(map(str, v))}]' if isinstance(v, list) else f'{k}={v}'
            for k, v in opts.items()]
    work = str(tmp_path / 'work')
    proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', work,
                           '--cfg-options'] + args, cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'dsrl.loss_fa' in log and 'dsrl.loss_sr' in log, log[-3000:]
    assert 'mIoU' in log, log[-3000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
