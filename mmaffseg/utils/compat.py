# Copyright (c) mmaffseg contributors. All rights reserved.
"""Make ``mmaffseg::path/to/config.py`` resolve like ``mmseg::...`` does.

mmengine resolves ``<scope>::<path>`` only for scopes in its hard-coded ``MODULE2PACKAGE`` table,
and finds the package through pkg_resources, which points at site-packages for an editable
(PEP 660) install. :func:`register_config_scope` adds the ``mmaffseg`` scope and resolves it
to this package's folder, where ``setup.py`` places ``.mim/configs`` (a symlink to the checkout's
``configs/`` for editable installs, a copy otherwise). Importing mmaffseg calls it, so the
scope works in mmaffseg's tools and in any script that imports mmaffseg before loading a config.
"""
import os.path as osp

SCOPE = 'mmaffseg'
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def register_config_scope() -> None:
    """Register the ``mmaffseg::`` config scope with mmengine (idempotent)."""
    import mmengine.config.config as config_module
    from mmengine.config.utils import MODULE2PACKAGE

    MODULE2PACKAGE.setdefault(SCOPE, SCOPE)
    original = config_module.get_installed_path
    if getattr(original, 'mmaffseg_scope', False):
        return

    def get_installed_path(package: str) -> str:
        if package == SCOPE:
            return PACKAGE_DIR
        return original(package)

    get_installed_path.mmaffseg_scope = True
    config_module.get_installed_path = get_installed_path
