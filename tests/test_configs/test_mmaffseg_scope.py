# Copyright (c) mmaffseg contributors. All rights reserved.
"""Configs that inherit ours through ``mmaffseg::`` build and train.

mmengine tags the dicts inherited from ``mmaffseg::`` with ``_scope_='mmaffseg'`` and builds
them from the registries of that scope: ``mmaffseg.registry``, children of mmseg's.
"""
import glob
import os.path as osp
import subprocess
import sys

import mmseg.registry as mmseg_registry
import pytest
from helpers import tiny_synthetic_overrides
from mmengine.registry import DATASETS, HOOKS, MODELS, VISUALIZERS, init_default_scope

from mmaffseg.cli import load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
#: every quick-start config, as ``<folder>/<file>``
QUICKSTARTS = sorted(
    osp.relpath(path, CONFIGS) for path in glob.glob(osp.join(CONFIGS, '*', '*quickstart*.py'))
    if not path.startswith(osp.join(CONFIGS, '_base_')))

def test_registries_are_children_of_mmseg():
    import mmaffseg.registry as mmaffseg_registry
    for name, reg in vars(mmseg_registry).items():
        if name.isupper() and hasattr(reg, 'module_dict'):
            child = getattr(mmaffseg_registry, name)
            assert child.parent is reg and child.scope == 'mmaffseg', name
    # mmaffseg's types stay in mmseg's registries (custom_imports) and resolve from ours
    assert mmseg_registry.MODELS.get('HANetNeck') is mmaffseg_registry.MODELS.get('HANetNeck')
    assert 'HANetNeck' in mmseg_registry.MODELS.module_dict


def _child_config(tmp_path, quickstart: str) -> str:
    path = tmp_path / 'child.py'
    path.write_text(f"_base_ = ['mmaffseg::{quickstart}']\n")
    return str(path)


def test_every_folder_has_a_quickstart():
    folders = {q.split('/')[0] for q in QUICKSTARTS}
    assert {'hanet', 'spnet', 'cpnet', 'dsrl', 'deeplabv1', 'deeplabv2', 'psa',
            'semantic_features', 'instance_embedding', 'quickstart'} <= folders


@pytest.mark.parametrize('quickstart', QUICKSTARTS)
def test_mmaffseg_scope_inheritance_builds(quickstart, tmp_path, tiny_synthetic_root):
    cfg = load_config(_child_config(tmp_path, quickstart))
    loader = cfg.get('test_dataloader') or cfg.train_dataloader
    hook = cfg.default_hooks.get('visualization')
    scopes = {part.get('_scope_') for part in (cfg.model, hook, cfg.visualizer, loader.dataset)
              if part is not None}
    assert 'mmaffseg' in scopes  # (parts that ours inherit from mmseg:: keep scope mmseg)
    # built as mmengine's Runner builds them: from mmengine's root registries
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == cfg.model.type
    VISUALIZERS.build(dict(cfg.visualizer, name=f'scope_test_{quickstart}'))
    if hook is not None:
        HOOKS.build(hook)
    dataset = dict(loader.dataset, data_root=tiny_synthetic_root, auto_generate=False)
    assert len(DATASETS.build(dataset)) > 0  # (a held-back split keeps a few images)


@pytest.mark.slow
def test_train_py_on_a_config_inheriting_mmaffseg(tmp_path, tiny_synthetic_root):
    config = _child_config(tmp_path, 'hanet/hanet_r18-d16_quickstart_synthetic-128x256.py')
    opts = tiny_synthetic_overrides(tiny_synthetic_root)
    opts.update({'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1,
                 'default_hooks.checkpoint.interval': 1,
                 'train_dataloader.dataset.pipeline.3.crop_size': '(64,128)',
                 'model.data_preprocessor.size': '[64,128]'})
    opts = [f'{k}=[{",".join(map(str, v))}]' if isinstance(v, list) else f'{k}={v}'
            for k, v in opts.items()]
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path / 'work'),
         '--cfg-options'] + opts, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert osp.isfile(tmp_path / 'work' / 'iter_1.pth')
