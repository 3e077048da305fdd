# Copyright (c) mmaffseg contributors. All rights reserved.
"""Check the heads' ``num_classes`` against the dataset's classes before training starts.

A decode head with more classes than the dataset trains without complaint (the extra logits
are never a target), one with fewer crashes in the loss with a bare ``IndexError`` (a device
assert on GPU). mmdet ships the same check (``NumClassCheckHook``); mmseg 1.x does not.
``tools/train.py`` adds this hook to every training run (``prepare_train_cfg``).
"""
from typing import Iterator, Sequence, Tuple

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..utils.config_errors import ConfigCheckError

#: Heads whose ``num_classes`` is not the number of segmentation classes: image-level
#: classes (CAMHead), an embedding size (EmbeddingHead, HypercolumnHead), a stored value
#: (AffinityHead) or a score map (SeedinessHead).
NON_SEMANTIC_HEADS = ('CAMHead', 'AffinityHead', 'EmbeddingHead', 'HypercolumnHead',
                      'SeedinessHead')


def segmentation_heads(model: nn.Module,
                       skip: Sequence[str] = NON_SEMANTIC_HEADS) -> Iterator[Tuple[str, nn.Module]]:
    """``(name, head)`` of the decode and auxiliary heads of a segmentor that have
    ``num_classes``, except those whose type is in ``skip``."""
    model = model.module if is_model_wrapper(model) else model
    for attr in ('decode_head', 'auxiliary_head'):
        heads = getattr(model, attr, None)
        if heads is None:
            continue
        named = ([(f'{attr}[{i}]', h) for i, h in enumerate(heads)]
                 if isinstance(heads, nn.ModuleList) else [(attr, heads)])
        for name, head in named:
            if hasattr(head, 'num_classes') and type(head).__name__ not in skip:
                yield name, head


def check_num_classes(model: nn.Module, dataset, where: str,
                      skip: Sequence[str] = NON_SEMANTIC_HEADS) -> None:
    """Raise a :class:`ConfigCheckError` (a ValueError) when a segmentation head's
    ``num_classes`` is not the number of ``dataset.metainfo['classes']``.

    Args:
        model (nn.Module): The segmentor (or its wrapper).
        dataset: The dataset (anything with ``metainfo``; without classes nothing is checked).
        where (str): The dataloader, for the message (e.g. ``'train_dataloader'``).
        skip (Sequence[str]): Head types not checked. Default: :data:`NON_SEMANTIC_HEADS`.
    """
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if not classes:
        return
    for name, head in segmentation_heads(model, skip):
        if head.num_classes != len(classes):
            raise ConfigCheckError(
                f'model.{name} ({type(head).__name__}) has num_classes={head.num_classes} but '
                f'the {where} dataset ({type(dataset).__name__}) has {len(classes)} classes; '
                f'set model.{name}.num_classes={len(classes)} (or the dataset\'s classes in '
                'metainfo) so that the two agree')


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Check the decode/auxiliary heads against the train and val datasets' classes.

    Runs at ``before_train`` (before the first iteration) and ``before_val``.

    Args:
        skip_heads (Sequence[str]): Head types whose ``num_classes`` means something else.
            Default: :data:`NON_SEMANTIC_HEADS`.
    """

    priority = 'VERY_HIGH'

    def __init__(self, skip_heads: Sequence[str] = NON_SEMANTIC_HEADS) -> None:
        self.skip_heads = tuple(skip_heads)

    def before_train(self, runner) -> None:
        """Check against the training dataset."""
        check_num_classes(runner.model, runner.train_dataloader.dataset, 'train_dataloader',
                          self.skip_heads)

    def before_val(self, runner) -> None:
        """Check against the validation dataset."""
        check_num_classes(runner.model, runner.val_loop.dataloader.dataset, 'val_dataloader',
                          self.skip_heads)
