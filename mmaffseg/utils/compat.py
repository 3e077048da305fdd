# Copyright (c) mmaffseg contributors. All rights reserved.
"""Everything mmaffseg changes in, or reads from, mmengine's internals, behind one version gate.

mmaffseg is written against mmengine 0.10 (``MMENGINE_RANGE``). The places that depend on
mmengine internals rather than its public API:

- :func:`register_config_scope`: makes ``mmaffseg::path/to/config.py`` resolve like
  ``mmseg::...``. mmengine resolves ``<scope>::<path>`` only for scopes in its hard-coded
  ``MODULE2PACKAGE`` table and finds the package through pkg_resources, which points at
  site-packages for an editable (PEP 660) install; this adds the ``mmaffseg`` scope and resolves
  it to this package's folder, where ``setup.py`` places ``.mim/configs`` (a symlink to the
  checkout's ``configs/`` for editable installs, a copy otherwise). Run on ``import mmaffseg``.
- :func:`scoped_config_path`: the file behind ``scope::path``, as mmengine resolves ``_base_``.
- :func:`~mmaffseg.utils.checkpoint.install_safe_checkpoint_loading` replaces the loaders of
  ``mmengine.runner.CheckpointLoader`` (and its scheme helpers); it calls
  :func:`check_mmengine_version` first.
"""
import os.path as osp

SCOPE = 'mmaffseg'
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: mmengine versions whose internals this module (and the safe checkpoint loaders) were
#: written for: ``low <= version < high``.
MMENGINE_RANGE = ('0.7.1', '1.0.0')


def check_mmengine_version(what: str) -> None:
    """Raise unless the installed mmengine is in :data:`MMENGINE_RANGE`.

    Args:
        what (str): The feature that needs it, for the message.

    Raises:
        RuntimeError: Naming the feature, the supported range and the installed version.
    """
    import mmengine
    from mmengine.utils import digit_version
    low, high = MMENGINE_RANGE
    if not digit_version(low) <= digit_version(mmengine.__version__) < digit_version(high):
        raise RuntimeError(f'mmaffseg\'s {what} are written for mmengine >={low},<{high}; '
                           f'found {mmengine.__version__}')


def register_config_scope() -> None:
    """Register the ``mmaffseg::`` config scope with mmengine (idempotent)."""
    check_mmengine_version('config scope (mmaffseg::)')
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


def scoped_config_path(path: str) -> str:
    """The config file behind ``scope::rel/path.py`` (resolved as mmengine resolves ``_base_``).

    Args:
        path (str): E.g. ``mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py``.

    Returns:
        str: The path in the installed package (which may not exist).
    """
    from mmengine.config import config as mmengine_config
    from mmengine.config.utils import _get_external_cfg_base_path, _get_package_and_cfg_path
    package, rel_path = _get_package_and_cfg_path(path)
    return _get_external_cfg_base_path(mmengine_config.get_installed_path(package), rel_path)

