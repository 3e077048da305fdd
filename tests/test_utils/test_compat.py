# Copyright (c) mmaffseg contributors. All rights reserved.
"""The one module that touches mmengine internals: its version gate and accessors."""
import os
import os.path as osp

import mmengine
import pytest

from mmaffseg.utils import compat


@pytest.mark.parametrize('version', ['0.7.0', '1.0.0', '2.1.3'])
def test_version_gate_names_feature_and_range(monkeypatch, version):
    monkeypatch.setattr(mmengine, '__version__', version)
    with pytest.raises(RuntimeError, match=rf"loaders are written for mmengine >=0\.7\.1,<1\.0\.0; "
                       rf'found {version}'):
        compat.check_mmengine_version('loaders')


def test_installed_mmengine_passes_the_gate():
    compat.check_mmengine_version('anything')


def test_scoped_config_path_resolves_both_scopes():
    import mmseg
    compat.register_config_scope()
    compat.register_config_scope()  # idempotent
    path = compat.scoped_config_path('mmaffseg::psa/README.md')
    # .mim/configs links to the checkout's configs/ (editable install); without .mim (a checkout
    # on PYTHONPATH) the checkout's configs/ is used directly
    assert osp.realpath(path) == osp.realpath(
        osp.join(osp.dirname(compat.PACKAGE_DIR), 'configs', 'psa', 'README.md'))
    rel = 'pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py'
    assert osp.realpath(compat.scoped_config_path(f'mmseg::{rel}')) == osp.realpath(
        osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', rel))


def test_checkout_on_pythonpath_without_mim_resolves_the_scope(tmp_path):
    """A checkout used only through PYTHONPATH (no pip install, so no mmaffseg/.mim): our
    get_flops.py loads a config inheriting ``mmaffseg::`` from the checkout's configs/, and a
    missing one is a one-line error (both were a raw FileNotFoundError for
    .mim/model-index.yml)."""
    import shutil
    import subprocess
    import sys
    repo = osp.dirname(compat.PACKAGE_DIR)
    checkout = tmp_path / 'checkout'
    for name in ('mmaffseg', 'configs', 'tools'):
        shutil.copytree(osp.join(repo, name), checkout / name, symlinks=True,
                        ignore=shutil.ignore_patterns('.mim', '__pycache__'))
    assert not (checkout / 'mmaffseg' / '.mim').exists()
    child = tmp_path / 'child.py'
    child.write_text("_base_ = ['mmaffseg::hanet/hanet_r18-d16_quickstart_synthetic-128x256.py']\n")
    missing = tmp_path / 'missing.py'
    missing.write_text("_base_ = ['mmaffseg::hanet/no_such_config.py']\n")
    env = dict(os.environ, PYTHONPATH=str(checkout), OMP_NUM_THREADS='1')
    tool = str(checkout / 'tools' / 'analysis_tools' / 'get_flops.py')
    ok = subprocess.run([sys.executable, tool, str(child), '--shape', '64', '128'], env=env,
                        cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert 'Params' in ok.stdout + ok.stderr
    bad = subprocess.run([sys.executable, tool, str(missing)], env=env, cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2, bad.stdout[-2000:] + bad.stderr[-2000:]
    assert bad.stderr.strip().splitlines()[-1] == (
        'get_flops.py: error: CONFIG: mmaffseg::hanet/no_such_config.py: no such config, '
        f'{checkout}/configs/hanet/no_such_config.py does not exist')
