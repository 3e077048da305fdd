# Copyright (c) mmaffseg contributors. All rights reserved.
"""``tools/test.py --out DIR``: route the predictions to the test evaluator(s) that write them.

mmseg's tools/test.py sets ``cfg.test_evaluator['output_dir']`` (and ``keep_results``), which
only works when ``test_evaluator`` is one dict. mmaffseg's configs may evaluate with several
metrics (e.g. the instance-embedding configs: ``InstanceAPMetric`` and the official
``CityscapesInstanceMetric``), so here every evaluator whose class takes an ``output_dir``
argument (mmseg's ``IoUMetric`` / ``CityscapesMetric``, mmaffseg's
``CityscapesInstanceMetric``...) gets one, and ``keep_results=True`` where its class takes that
argument (mmseg's ``CityscapesMetric`` deletes its folder otherwise). The classes' signatures
decide, not a list of names.
"""
import inspect
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.config import Config

from ..utils.config_errors import ConfigCheckError


def _metric_class(evaluator: dict) -> Optional[type]:
    """The class an evaluator dict builds, or None when its type is not registered (building
    the runner then reports it, with the closest registered names)."""
    kind = evaluator.get('type')
    if inspect.isclass(kind):
        return kind
    from mmseg.registry import METRICS
    try:
        return METRICS.get(kind) if isinstance(kind, str) else None
    except KeyError:
        return None


def _named_parameters(cls: type) -> set:
    """The explicitly named arguments of ``cls.__init__`` (``**kwargs`` swallows anything, so
    it does not count)."""
    return {name for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def set_test_output_dir(cfg: Config, out: str) -> List[Tuple[str, str]]:
    """Make the test evaluator(s) of ``cfg`` write their predictions under ``out``, in place.

    One evaluator that takes ``output_dir`` writes into ``out`` itself (as with mmseg's
    tools/test.py); with several, each writes into ``out/<its type>`` (their files could have
    the same names: mmseg's ``IoUMetric`` and ``CityscapesMetric`` both write
    ``<image>.png``).

    Args:
        cfg (Config): The test config; ``test_evaluator`` is a dict or a list of dicts.
        out (str): The ``--out`` folder.

    Returns:
        list[tuple[str, str]]: ``(evaluator type, its output folder)`` of each writer.

    Raises:
        ConfigCheckError: When no test evaluator can write outputs.
    """
    evaluator = cfg.get('test_evaluator')
    if evaluator is None:
        raise ConfigCheckError('--out needs a test_evaluator in the config (e.g. '
                               "dict(type='IoUMetric')), none is set")
    if isinstance(evaluator, dict) and 'metrics' in evaluator:  # dict(type=Evaluator, ...)
        evaluator = evaluator['metrics']
    evaluators = list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]
    writers, others, unknown = [], [], False
    for ev in evaluators:
        cls = _metric_class(ev)
        if cls is None:
            unknown = True
            continue
        params = _named_parameters(cls)
        (writers if 'output_dir' in params else others).append((ev, cls.__name__, params))
    if not writers:
        if unknown:
            return []  # building the runner names the unregistered type
        names = ', '.join(name for _, name, _ in others)
        raise ConfigCheckError(
            f'--out: no test evaluator of the config can write predictions (test_evaluator: '
            f'{names}; none takes an output_dir argument). Add one that does, e.g. '
            "--cfg-options test_evaluator.type=IoUMetric for semantic segmentation, or drop "
            '--out')
    routed = []
    names = [name for _, name, _ in writers]
    for i, (ev, name, params) in enumerate(writers):
        if len(writers) == 1:
            folder = out
        else:  # the same type twice: numbered folders
            folder = osp.join(out, name if names.count(name) == 1 else
                              f'{name}_{names[:i + 1].count(name)}')
        ev['output_dir'] = folder
        if 'keep_results' in params:
            ev['keep_results'] = True
        routed.append((name, folder))
    return routed
