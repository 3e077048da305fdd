# Copyright (c) mmaffseg contributors. All rights reserved.
"""``tools/make_pseudo_labels.py --no-crf``: every stage that needs the dense CRF is dropped."""
import sys

import pytest
from mmengine.config import Config
from tool_runner import load_tool

from mmaffseg.cli.pseudo_labels import prepare_pseudo_label_cfg
from mmaffseg.ops.psa_stages import CRF_STAGES


def _stages(tmp_path, stages=None, **kwargs):
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    cfg = Config(dict(test_cfg=dict(type='PseudoLabelLoop')))
    prepare_pseudo_label_cfg(cfg, 'c.py', str(ckpt), str(ckpt), str(tmp_path), stages,
                             work_dir=str(tmp_path), **kwargs)
    return cfg.test_cfg.stages


def test_no_crf_drops_every_crf_stage(tmp_path):
    assert set(CRF_STAGES) == {'affinity_labels', 'rw_crf'}
    assert _stages(tmp_path, ['cam', 'affinity_labels', 'rw', 'rw_crf'], no_crf=True) == \
        ['cam', 'rw']
    assert _stages(tmp_path, ['cam', 'rw', 'rw_crf'], no_crf=True) == ['cam', 'rw']
    with pytest.raises(ValueError, match='--no-crf drops every stage of'):
        _stages(tmp_path, ['affinity_labels', 'rw_crf'], no_crf=True)
    with pytest.raises(ValueError, match='--affinity-labels needs the dense CRF'):
        _stages(tmp_path, affinity_labels=True, no_crf=True)


def test_no_crf_help_names_the_stages(capsys, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['make_pseudo_labels.py', '--help'])
    with pytest.raises(SystemExit):
        load_tool('make_pseudo_labels.py').parse_args()
    out = ' '.join(capsys.readouterr().out.split())
    assert 'need the dense CRF: affinity_labels, rw_crf' in out
