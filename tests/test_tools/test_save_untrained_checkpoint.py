# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/analysis_tools/save_untrained_checkpoint.py writes a loadable, seed-determined model."""
import os.path as osp
import subprocess
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'save_untrained_checkpoint.py')
CONFIG = osp.join(REPO, 'configs', 'quickstart',
                  'deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py')


def _save(out, seed):
    subprocess.run([sys.executable, TOOL, CONFIG, str(out), '--seed', str(seed)], check=True,
                   cwd=REPO, capture_output=True)
    return torch.load(str(out), weights_only=False)


def test_checkpoint_is_loadable_and_seeded(tmp_path):
    a = _save(tmp_path / 'a.pth', 0)
    b = _save(tmp_path / 'sub' / 'b.pth', 0)
    c = _save(tmp_path / 'c.pth', 1)
    assert a['meta'] == dict(seed=0, untrained=True)
    assert not list(tmp_path.glob('*.tmp'))
    key = 'decode_head.conv_seg.weight'
    assert torch.equal(a['state_dict'][key], b['state_dict'][key])
    assert not torch.equal(a['state_dict'][key], c['state_dict'][key])

    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmaffseg.cli import load_config
    init_default_scope('mmseg')
    model = MODELS.build(load_config(CONFIG).model)
    missing, unexpected = model.load_state_dict(a['state_dict'], strict=True)
    assert not missing and not unexpected
