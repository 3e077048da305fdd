# Copyright (c) mmaffseg contributors. All rights reserved.
"""GPU checks, skipped without CUDA (``tools/analysis_tools/gpu_check.sh`` runs them):
``tools/train.py --amp`` trains every family's quick-start config for a few iterations with
finite losses; SyncBN trains in a 2-process run (2 GPUs); the PSA pseudo-label tool runs on the
GPU and agrees with its CPU run. The CUDA random walk is checked in
``tests/test_wsss/test_random_walk.py::test_walk_on_gpu_matches_cpu``."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from helpers import tiny_synthetic_overrides
from quickstart_families import FAMILIES, REPO, family_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')

ITERS = 4


def _cfg_options(root: str, family: str, work_dir: str) -> list:
    opts = {k: v for k, v in tiny_synthetic_overrides(root).items()
            if k.startswith('train_dataloader') or k.startswith('val_dataloader')}
    opts.update({'train_cfg.max_iters': ITERS, 'train_cfg.val_interval': ITERS,
                 'default_hooks.checkpoint.interval': ITERS,
                 'default_hooks.logger.interval': 1, 'work_dir': work_dir})
    if family == 'psa_affinitynet':  # ground-truth WSSS labels stand in for affinity labels
        opts = {k: v for k, v in opts.items() if not k.startswith('val_')}  # no validation
        opts['train_dataloader.dataset.map_labels'] = True
        opts['train_dataloader.dataset.data_prefix.seg_map_path'] = 'gtFine/train'
    out = []
    for k, v in opts.items():
        if isinstance(v, (list, tuple)):
            v = '[' + ','.join(str(x) for x in v) + ']'
        out.append(f'{k}={v}')
    return out


def _train(args: list, env: dict = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=900)


def _logged_losses(work_dir: str) -> list:
    [scalars] = [osp.join(d, f) for d, _, files in os.walk(work_dir) for f in files
                 if f == 'scalars.json']
    with open(scalars) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r['loss'] for r in rows if 'loss' in r]


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_amp_training_of_every_family(family, tiny_synthetic_root, tmp_path):
    work_dir = str(tmp_path / family)
    out = _train([sys.executable, 'tools/train.py', family_config(family), '--amp',
                  '--cfg-options', *_cfg_options(tiny_synthetic_root, family, work_dir)])
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'AmpOptimWrapper' in out.stdout + out.stderr
    losses = _logged_losses(work_dir)
    assert len(losses) == ITERS and all(math.isfinite(v) for v in losses), losses
    assert osp.isfile(osp.join(work_dir, f'iter_{ITERS}.pth'))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs 2 CUDA devices')
def test_syncbn_two_process_amp_training(tiny_synthetic_root, tmp_path):
    family = 'deeplabv3plus'
    work_dir = str(tmp_path / 'syncbn')
    opts = _cfg_options(tiny_synthetic_root, family, work_dir) + [
        'norm_cfg.type=SyncBN', 'model.backbone.norm_cfg.type=SyncBN',
        'model.decode_head.norm_cfg.type=SyncBN', 'model.auxiliary_head.norm_cfg.type=SyncBN']
    out = _train([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                  '--master_port=29531', 'tools/train.py', family_config(family), '--amp',
                  '--launcher', 'pytorch', '--cfg-options', *opts])
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'SyncBatchNorm' in out.stdout + out.stderr
    losses = _logged_losses(work_dir)
    assert losses and all(math.isfinite(v) for v in losses)


def test_pseudo_labels_on_gpu_match_cpu(tiny_synthetic_root, tmp_path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmaffseg.cli import load_config
    init_default_scope('mmseg')
    psa = osp.join(REPO, 'configs', 'psa')
    pl_cfg = osp.join(psa, 'psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py')
    aff_cfg = osp.join(psa, 'psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-128x256.py')
    ckpts = []
    torch.manual_seed(0)
    for name, path in (('cam', pl_cfg), ('aff', aff_cfg)):
        model = MODELS.build(load_config(path).model)
        model.init_weights()
        ckpts.append(str(tmp_path / f'{name}.pth'))
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpts[-1])
    opts = tiny_synthetic_overrides(tiny_synthetic_root)
    opts.update({'test_dataloader.dataset.indices': None, 'test_cfg.crf.workers': 0})
    opts = [f'{k}={v}' for k, v in opts.items() if not isinstance(v, (list, tuple))] + [
        'test_dataloader.dataset.image_size=[64,128]']
    outs = {}
    for device, env in (('cuda', {}), ('cpu', {'CUDA_VISIBLE_DEVICES': ''})):
        outs[device] = str(tmp_path / device)
        run = _train([sys.executable, 'tools/make_pseudo_labels.py', pl_cfg, '--cam-checkpoint',
                      ckpts[0], '--aff-checkpoint', ckpts[1], '--out', outs[device],
                      '--cfg-options', *opts], env)
        assert run.returncode == 0, run.stderr[-3000:]
    for stage in ('cam', 'rw'):
        pngs = sorted(osp.relpath(osp.join(d, f), osp.join(outs['cpu'], stage))
                      for d, _, files in os.walk(osp.join(outs['cpu'], stage)) for f in files)
        assert len(pngs) == 6
        agree = np.mean([
            (cv2.imread(osp.join(outs['cuda'], stage, p), cv2.IMREAD_UNCHANGED) ==
             cv2.imread(osp.join(outs['cpu'], stage, p), cv2.IMREAD_UNCHANGED)).mean()
            for p in pngs])
        assert agree > 0.99, f'{stage}: GPU and CPU pseudo labels agree on {agree:.4f}'
