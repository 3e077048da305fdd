# Copyright (c) mmaffseg contributors. All rights reserved.
"""mmaffseg: affinity- and attention-based segmentation methods for MMSegmentation 1.x.

Importing this package checks the installed OpenMMLab versions and registers every mmaffseg
module into mmseg's own registries (``mmseg.registry.MODELS``, ``DATASETS``, ``TRANSFORMS``,
``HOOKS``, ``LOOPS``, ``METRICS``...), so an existing mmseg config only needs::

    custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)

:mod:`mmaffseg.registry` adds the ``mmaffseg`` registry scope (children of mmseg's registries)
that mmengine uses for configs inheriting ``mmaffseg::...``.
"""
from .version import __version__, version_info
from .version_check import check_openmmlab_versions

check_openmmlab_versions()

from .utils.compat import register_config_scope  # noqa: E402

register_config_scope()

from .utils.checkpoint import install_safe_checkpoint_loading  # noqa: E402

# every mmengine checkpoint loader, local or remote, loads weights-only (docs/checkpoints.md)
install_safe_checkpoint_loading()

# Registration happens as a side effect of importing the sub-packages.
from . import datasets, engine, evaluation, instance_embedding, models, ops, postprocessing, structures, utils, visualization, wsss  # noqa: E402,F401,I001,E501
# The `mmaffseg` registry scope (children of mmseg's registries), for `mmaffseg::` configs.
from . import registry  # noqa: E402,F401

# mmseg's SegLocalVisualizer and MMSegInferencer stop with a clear error on instance and
# embedding predictions, which they cannot handle (mmaffseg/visualization/mmseg_guards.py)
visualization.install_mmseg_guards()

__all__ = ['__version__', 'version_info']
