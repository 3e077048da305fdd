# Copyright (c) mmaffseg contributors. All rights reserved.
"""Check a checkpoint the runner loads before its weights go into the model.

mmengine's runner loads ``load_from`` non-strictly: a checkpoint of another model is accepted
with size-mismatch warnings, and tests or inference then report numbers of a half-initialised
model. ``--resume`` from a checkpoint that training did not write fails with a bare
``KeyError: 'epoch'``. mmaffseg's ``tools/test.py`` and ``tools/train.py --resume`` add
:class:`CheckpointCheckHook`, which turns both into a :class:`mmaffseg.utils.CheckpointError`
that names the file and the first offending keys. ``tools/test.py`` also refuses a checkpoint
with NaN/inf weights (:func:`mmaffseg.utils.finite.check_finite_weights`).
"""
from typing import Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ..utils.checkpoint import check_resumable, check_state_dict
from ..utils.finite import ALLOW_FLAG, check_finite_weights


@HOOKS.register_module()
class CheckpointCheckHook(Hook):
    """Refuse a loaded checkpoint that does not fit the model (and, for resuming, training).

    Args:
        source (str, optional): The checkpoint's file or URL, for messages. Defaults to the
            runner's ``load_from``.
        strict (bool): Require the checkpoint's weights to match the model's names and shapes.
        resume (bool): Require a training checkpoint (``meta.epoch``/``meta.iter``).
        opt_out (str): How to load a mismatching checkpoint anyway, for the message.
        finite (bool): Require finite (no NaN/inf) weights.
        finite_opt_out (str): How to load a non-finite checkpoint anyway, for the message.
    """

    priority = 'VERY_HIGH'

    def __init__(self, source: Optional[str] = None, strict: bool = True, resume: bool = False,
                 opt_out: str = '--non-strict', finite: bool = False,
                 finite_opt_out: str = ALLOW_FLAG) -> None:
        self.source = source
        self.strict = strict
        self.resume = resume
        self.opt_out = opt_out
        self.finite = finite
        self.finite_opt_out = finite_opt_out

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        source = self.source or str(runner._load_from)
        if self.resume:
            check_resumable(checkpoint, source)
        if self.strict:
            check_state_dict(runner.model, checkpoint, source, self.opt_out)
        if self.finite:
            check_finite_weights(checkpoint, source, self.finite_opt_out)
