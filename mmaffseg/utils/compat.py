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
#: Where ``setup.py`` exposes ``configs/`` and the model index to mmengine and mim.
MIM_DIR = osp.join(PACKAGE_DIR, '.mim')
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
    """Register the ``mmaffseg::`` config scope with mmengine (idempotent).

    In a checkout used without installing it (only on ``PYTHONPATH``), ``setup.py`` has made no
    ``.mim`` folder: ``mmaffseg::`` paths then resolve to the checkout's ``configs/``
    (:func:`_checkout_config_path`) instead of failing on ``.mim/model-index.yml``.
    """
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

    by_name = config_module._get_external_cfg_path
    by_path = config_module._get_external_cfg_base_path

    def get_external_cfg_path(package_path: str, cfg_file: str) -> str:
        if package_path == PACKAGE_DIR and not osp.isfile(osp.join(MIM_DIR, 'model-index.yml')):
            # no model index to look names up in: mmengine goes on with the path
            raise ValueError(f'{cfg_file} is not looked up by name without {MIM_DIR}')
        return by_name(package_path, cfg_file)

    def get_external_cfg_base_path(package_path: str, cfg_name: str) -> str:
        if package_path == PACKAGE_DIR and not osp.isdir(osp.join(MIM_DIR, 'configs')):
            return _checkout_config_path(cfg_name)
        return by_path(package_path, cfg_name)

    for name, function in (('get_installed_path', get_installed_path),
                           ('_get_external_cfg_path', get_external_cfg_path),
                           ('_get_external_cfg_base_path', get_external_cfg_base_path)):
        function.mmaffseg_scope = True
        setattr(config_module, name, function)


def _checkout_config_path(cfg_name: str) -> str:
    """``configs/<cfg_name>`` of the source checkout around :data:`PACKAGE_DIR`.

    Raises:
        ConfigFileError: One line naming the file, or saying that this mmaffseg has neither
            ``.mim/configs`` nor a checkout's ``configs/``.
    """
    from .config_errors import ConfigFileError
    configs = osp.join(osp.dirname(PACKAGE_DIR), 'configs')
    if not osp.isdir(configs):
        raise ConfigFileError(
            f'mmaffseg::{cfg_name}: this mmaffseg ({PACKAGE_DIR}) has no {MIM_DIR}/configs '
            '(made by pip install) and is not in a source checkout with configs/: reinstall '
            'mmaffseg (pip install -e CHECKOUT) or give the config by its path')
    path = osp.join(configs, cfg_name)
    if not osp.isfile(path):
        raise ConfigFileError(f'mmaffseg::{cfg_name}: no such config, {path} does not exist')
    return path


def scoped_config_path(path: str) -> str:
    """The config file behind ``scope::rel/path.py`` (resolved as mmengine resolves ``_base_``).

    Args:
        path (str): E.g. ``mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py``.

    Returns:
        str: The path in the installed package (which may not exist).
    """
    from mmengine.config import config as mmengine_config
    from mmengine.config.utils import _get_package_and_cfg_path
    package, rel_path = _get_package_and_cfg_path(path)
    return mmengine_config._get_external_cfg_base_path(
        mmengine_config.get_installed_path(package), rel_path)

