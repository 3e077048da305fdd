# Copyright (c) mmaffseg contributors. All rights reserved.
"""Ramp a loss weight of the model during training.

Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance Segmentation via
Deep Metric Learning", arXiv:1703.10277, 2017, train ``L_e + lambda L_cls`` with ``lambda``
increased from 0 to 0.2: the seediness targets are masks grown in the embedding, meaningless
until the embedding has learnt something. This hook sets such a weight (any float attribute of
the model) before every training iteration, from the iteration number alone, so a resumed run
continues the same ramp.
"""
import math
from typing import Optional, Sequence, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]
_SHAPES = ('linear', 'cosine')


def ramp_value(step: int, start_value: float, end_value: float, begin: int, end: int,
               shape: str = 'linear') -> float:
    """Value of a ramp at ``step``: ``start_value`` until ``begin``, ``end_value`` from ``end``.

    Args:
        step (int): Current iteration.
        start_value (float): Value before ``begin``.
        end_value (float): Value from ``end`` on.
        begin (int): First iteration of the ramp.
        end (int): Iteration at which ``end_value`` is reached.
        shape (str): ``'linear'`` or ``'cosine'`` (half cosine, flat at both ends).

    Returns:
        float: The value.
    """
    if shape not in _SHAPES:
        raise ValueError(f'ramp shape must be one of {_SHAPES}, got {shape!r}')
    if end <= begin:
        return start_value if step < begin else end_value
    t = min(max((step - begin) / (end - begin), 0.0), 1.0)
    if shape == 'cosine':
        t = (1 - math.cos(math.pi * t)) / 2
    return start_value + t * (end_value - start_value)


@HOOKS.register_module()
class LossWeightRampHook(Hook):
    """Set ``model.<attr_name>`` to a ramp of the iteration before each training iteration.

    Args:
        attr_name (str): Float attribute of the (unwrapped) model, or a dotted path to one
            (e.g. ``'seediness_head.loss_decode.loss_weight'``). Defaults to
            ``'cls_loss_weight'`` (lambda of ``InstanceEmbeddingSegmentor``).
        start_value (float): Value until ``begin``. Defaults to 0.
        end_value (float): Value from ``end`` on. Defaults to 0.2.
        begin (int): Iteration where the ramp starts. Defaults to 0.
        end (int): Iteration where it reaches ``end_value``. Defaults to 1000.
        shape (str): ``'linear'`` or ``'cosine'``. Defaults to ``'linear'``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 attr_name: str = 'cls_loss_weight',
                 start_value: float = 0.0,
                 end_value: float = 0.2,
                 begin: int = 0,
                 end: int = 1000,
                 shape: str = 'linear') -> None:
        if shape not in _SHAPES:
            raise ValueError(f'LossWeightRampHook shape must be one of {_SHAPES}, got {shape!r}')
        if begin < 0 or end < begin:
            raise ValueError(f'LossWeightRampHook needs 0 <= begin <= end, got begin={begin} '
                             f'and end={end}')
        self.path: Sequence[str] = attr_name.split('.')
        self.attr_name = attr_name
        self.start_value = start_value
        self.end_value = end_value
        self.begin = begin
        self.end = end
        self.shape = shape

    def _owner(self, runner):
        obj = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for name in self.path[:-1]:
            obj = getattr(obj, name)
        if not hasattr(obj, self.path[-1]):
            raise AttributeError(
                f'LossWeightRampHook: the model ({type(runner.model).__name__}) has no '
                f'attribute {self.attr_name!r}; set attr_name to the weight to ramp')
        return obj

    def before_train(self, runner) -> None:
        """Check the attribute exists before the first iteration."""
        self._owner(runner)

    def before_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None) -> None:
        """Set the weight for iteration ``runner.iter``."""
        setattr(self._owner(runner), self.path[-1],
                ramp_value(runner.iter, self.start_value, self.end_value, self.begin, self.end,
                           self.shape))
