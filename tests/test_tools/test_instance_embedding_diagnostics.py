# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/analysis_tools/instance_embedding_diagnostics.py runs on a checkpoint and reports the
oracle-seed and seediness-target statistics."""
import os.path as osp
import re
import subprocess
import sys

import torch
from helpers import tiny_synthetic_overrides
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmaffseg.cli import load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'instance_embedding_diagnostics.py')
CONFIG = osp.join(REPO, 'configs', 'instance_embedding',
                  'instance-embedding_r18-fpn_quickstart_synthetic-128x256.py')


def test_tool_reports_oracle_and_target_statistics(tiny_synthetic_root, tmp_path):
    opts = tiny_synthetic_overrides(tiny_synthetic_root)
    opts['train_dataloader.dataset.pipeline.4.crop_size'] = (64, 128)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(load_config(CONFIG, opts).model)
    ckpt = tmp_path / 'untrained.pth'
    torch.save(dict(state_dict=model.state_dict()), str(ckpt))
    args = [f'{k}=({",".join(map(str, v))})' if isinstance(v, tuple) else f'{k}={v}'
            for k, v in opts.items()]
    out = subprocess.run(
        [sys.executable, TOOL, CONFIG, str(ckpt), '--num-val', '2', '--num-train', '2',
         '--threads', '1', '--cfg-options', *args],
        cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    match = re.search(r'validation: (\d+) thing instances in 2 images', text)
    assert match and int(match.group(1)) > 0
    row = re.search(r'^all\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$', text, re.M)
    assert row and int(row.group(1)) == int(match.group(1))
    assert all(0 <= float(v) <= 1 for v in row.groups()[1:])
    for name in ('object target', 'object predicted'):
        rates = re.search(rf'{name}\s+(.*)$', text, re.M).group(1).split()
        assert len(rates) == 4 and all(0 <= float(r) <= 1 for r in rates)


def test_tool_rejects_a_config_of_another_segmentor(tmp_path):
    config = osp.join(REPO, 'configs', 'quickstart',
                      'deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py')
    init_default_scope('mmseg')
    model = MODELS.build(load_config(config).model)
    ckpt = tmp_path / 'plain.pth'
    torch.save(dict(state_dict=model.state_dict()), str(ckpt))
    out = subprocess.run([sys.executable, TOOL, config, str(ckpt)], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert 'is not an InstanceEmbeddingSegmentor config' in out.stderr
