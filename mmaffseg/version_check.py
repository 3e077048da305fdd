# Copyright (c) mmaffseg contributors. All rights reserved.
"""Fail early, with the supported range, when OpenMMLab packages do not fit."""
from importlib import metadata

from packaging.version import Version

from .version import MMCV_MAX, MMCV_MIN, MMENGINE_MAX, MMENGINE_MIN, MMSEG_MAX, MMSEG_MIN

_REQUIREMENTS = (
    # (import name, distribution names to try, min inclusive, max exclusive)
    ('mmcv', ('mmcv', 'mmcv-full'), MMCV_MIN, MMCV_MAX),
    ('mmengine', ('mmengine', 'mmengine-lite'), MMENGINE_MIN, MMENGINE_MAX),
    ('mmseg', ('mmsegmentation', ), MMSEG_MIN, MMSEG_MAX),
)

_INSTALL_HINT = 'Run `bash tools/install.sh` from the mmaffseg checkout (see README.md).'


def _installed_version(import_name: str, dists: tuple) -> str:
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    try:
        module = __import__(import_name)
    except ImportError as e:
        raise ImportError(f'mmaffseg needs {import_name} but it is not installed. '
                          f'{_INSTALL_HINT}') from e
    return module.__version__


def check_openmmlab_versions() -> None:
    """Raise ImportError naming the supported range if a dependency does not fit.

    Also checks that mmcv is the full build (with compiled ``mmcv.ops``), which mmseg needs.
    """
    for import_name, dists, lo, hi in _REQUIREMENTS:
        found = _installed_version(import_name, dists)
        if not (Version(lo) <= Version(found) < Version(hi)):
            raise ImportError(
                f'mmaffseg supports {import_name}>={lo},<{hi}, but {import_name}=={found} is '
                f'installed. {_INSTALL_HINT}')
    try:
        from mmcv.ops import nms  # noqa: F401
    except (ImportError, ModuleNotFoundError, OSError) as e:
        raise ImportError(
            'mmaffseg needs the full mmcv build with compiled ops (mmseg imports mmcv.ops); '
            f'importing mmcv.ops failed: {e}. Rebuild mmcv with MMCV_WITH_OPS=1. '
            f'{_INSTALL_HINT}') from e
