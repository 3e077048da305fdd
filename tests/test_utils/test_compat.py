# Copyright (c) mmaffseg contributors. All rights reserved.
"""The one module that touches mmengine internals: its version gate and accessors."""
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
    assert osp.realpath(path) == osp.realpath(
        osp.join(compat.PACKAGE_DIR, '.mim', 'configs', 'psa', 'README.md'))
    rel = 'pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py'
    assert osp.realpath(compat.scoped_config_path(f'mmseg::{rel}')) == osp.realpath(
        osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', rel))
