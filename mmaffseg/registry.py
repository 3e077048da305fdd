# Copyright (c) mmaffseg contributors. All rights reserved.
"""The ``mmaffseg`` registry scope: child registries of mmseg's.

mmaffseg's modules register directly into mmseg's registries (``mmseg.registry.MODELS``...), so
an mmseg config finds them after ``custom_imports = dict(imports=['mmaffseg'])``. A config that
inherits one of ours through ``_base_ = ['mmaffseg::...']`` is tagged by mmengine with
``_scope_='mmaffseg'``, and mmengine then builds its parts from the registry of scope
``mmaffseg`` (it imports ``mmaffseg.registry`` to find it). These registries are that scope:
children of mmseg's (``parent``), so every lookup falls back to mmseg's registries (where
mmaffseg's modules are) and then to mmengine's, exactly as mmseg's own projects do.
"""
from mmengine.registry import Registry
from mmseg import registry as mmseg_registry

SCOPE = 'mmaffseg'


class ChildRegistry(Registry):
    """A registry whose first use also imports its parent's modules.

    mmengine looks a name up in the parents' tables without importing the parents' lazy
    ``locations``; mmseg registers e.g. ``SegVisualizationHook`` only when its ``HOOKS`` registry
    imports ``mmseg.engine``, so a child must trigger that import itself.
    """

    def import_from_location(self) -> None:
        """Import this registry's and then the parent's ``locations`` (once each)."""
        super().import_from_location()
        if self.parent is not None:
            self.parent.import_from_location()


def _child(parent: Registry, locations: tuple = ('mmaffseg', )) -> Registry:
    """A registry of scope ``mmaffseg`` below ``parent``, importing ``locations`` on first use."""
    return ChildRegistry(parent.name, parent=parent, scope=SCOPE, locations=list(locations))


RUNNERS = _child(mmseg_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmseg_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmseg_registry.LOOPS, ('mmaffseg.wsss', ))
HOOKS = _child(mmseg_registry.HOOKS, ('mmaffseg.engine', ))
DATASETS = _child(mmseg_registry.DATASETS, ('mmaffseg.datasets', ))
DATA_SAMPLERS = _child(mmseg_registry.DATA_SAMPLERS)
TRANSFORMS = _child(mmseg_registry.TRANSFORMS, ('mmaffseg.datasets', ))
MODELS = _child(mmseg_registry.MODELS, ('mmaffseg.models', 'mmaffseg.wsss'))
MODEL_WRAPPERS = _child(mmseg_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmseg_registry.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(mmseg_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmseg_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmseg_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmseg_registry.PARAM_SCHEDULERS)
METRICS = _child(mmseg_registry.METRICS, ('mmaffseg.evaluation', ))
EVALUATOR = _child(mmseg_registry.EVALUATOR)
TASK_UTILS = _child(mmseg_registry.TASK_UTILS)
VISUALIZERS = _child(mmseg_registry.VISUALIZERS, ('mmaffseg.visualization', ))
VISBACKENDS = _child(mmseg_registry.VISBACKENDS)
LOG_PROCESSORS = _child(mmseg_registry.LOG_PROCESSORS)
INFERENCERS = _child(mmseg_registry.INFERENCERS)
