# Copyright (c) mmaffseg contributors. All rights reserved.
"""`import mmaffseg` registers into mmseg's own registries (``mmaffseg.registry`` only adds
empty child registries for the ``mmaffseg`` scope: tests/test_configs/test_mmaffseg_scope.py).
"""
import importlib
import inspect

import mmseg.registry as seg_registry
from mmengine.registry import Registry

import mmaffseg  # noqa: F401


def _registered():
    """{class: registry name} for every mmaffseg class in any mmseg registry."""
    found = {}
    for reg in vars(seg_registry).values():
        if isinstance(reg, Registry):
            for name, cls in reg.module_dict.items():
                if cls.__module__.startswith('mmaffseg.'):
                    assert name == cls.__name__
                    found[cls] = reg.name
    return found


def test_foundation_modules_are_in_mmseg_registries():
    reg = _registered()
    names = {cls.__name__: r for cls, r in reg.items()}
    assert names['SyntheticCityscapesDataset'] == 'dataset'
    assert names['LoadCheckedAnnotations'] == 'transform'
    assert seg_registry.DATASETS.get('SyntheticCityscapesDataset').__module__.startswith(
        'mmaffseg')


CONFIG_FACING = ('mmaffseg.models.backbones', 'mmaffseg.models.necks',
                 'mmaffseg.models.decode_heads', 'mmaffseg.models.losses',
                 'mmaffseg.models.segmentors', 'mmaffseg.datasets', 'mmaffseg.evaluation',
                 'mmaffseg.wsss', 'mmaffseg.postprocessing', 'mmaffseg.engine')


def test_every_exported_config_type_is_registered():
    """Each model / transform / hook / loop / metric class that a config-facing sub-package
    exports in ``__all__`` must be reachable from a config (building blocks in
    ``models.layers`` or not exported need not be)."""
    import torch.nn as nn
    from mmcv.transforms import BaseTransform
    from mmengine.evaluator import BaseMetric
    from mmengine.hooks import Hook
    from mmengine.runner import BaseLoop
    bases = (nn.Module, BaseTransform, Hook, BaseLoop, BaseMetric)
    registered = _registered()
    missing = []
    for pkg_name in CONFIG_FACING:
        pkg = importlib.import_module(pkg_name)
        for name in getattr(pkg, '__all__', []):
            obj = getattr(pkg, name)
            if inspect.isclass(obj) and issubclass(obj, bases) and obj not in registered:
                missing.append(f'{pkg_name}.{name}')
    assert not missing, f'exported but not registered in any mmseg registry: {missing}'
