# Copyright (c) mmaffseg contributors. All rights reserved.
"""Stop (or skip) on a non-finite loss, and never save a checkpoint of non-finite weights.

A training whose learning rate is far too high has NaN losses within a few iterations;
mmengine's loop goes on, saves ``iter_N.pth`` of NaN weights, points ``last_checkpoint`` at the
last of them and exits 0. :class:`FiniteCheckHook` (added to every run of mmaffseg's
``tools/train.py`` as ``default_hooks.finite_check``):

* checks the loss before every optimizer step (on all processes at once in a distributed run):
  a non-finite step is not applied (as AMP loss scalers skip steps with inf gradients) and the
  buffers the forward pass changed (BatchNorm statistics) are restored, so the weights stay
  finite;
* stops training with a :class:`~mmaffseg.utils.finite.NonFiniteError` naming the iteration
  and the non-finite loss terms at the ``patience``-th such iteration in a row (the first by
  default); with ``skip_nonfinite=True`` it only logs the skipped steps;
* refuses to save a checkpoint whose parameters, buffers or optimizer state are not finite
  (``before_save_checkpoint``), so ``last_checkpoint`` keeps naming the last finite one.
"""
import os.path as osp
from typing import List, Mapping, Optional, Union

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import HOOKS

from ..utils.finite import NonFiniteError, first_non_finite, named_tensors, non_finite_terms

DATA_BATCH = Optional[Union[dict, tuple, list]]
SETTING = 'default_hooks.finite_check'


@HOOKS.register_module()
class FiniteCheckHook(Hook):
    """Keep a training's weights and checkpoints finite (see the module docstring).

    Args:
        patience (int): Training stops at the ``patience``-th consecutive iteration with a
            non-finite loss; the steps before are skipped and logged. Default: 1 (the first).
        skip_nonfinite (bool): Never stop on a non-finite loss: skip every such step and log
            it. Training still stops once the weights themselves are non-finite. Default: False.
    """

    priority = 'ABOVE_NORMAL'  # after_train_iter before the checkpoint hook saves

    def __init__(self, patience: int = 1, skip_nonfinite: bool = False) -> None:
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f'FiniteCheckHook: patience must be an integer >= 1, got '
                             f'{patience!r}')
        self.patience = patience
        self.skip_nonfinite = skip_nonfinite
        self._skipped = False
        self._streak = 0
        self._buffers: List[torch.Tensor] = []

    @staticmethod
    def _model(runner) -> torch.nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        """Route every optimizer wrapper's ``update_params`` through the check."""
        wrapper = runner.optim_wrapper
        wrappers = wrapper.values() if isinstance(wrapper, OptimWrapperDict) else [wrapper]
        for one in wrappers:
            if isinstance(one, OptimWrapper):
                self._guard(one)

    def _guard(self, wrapper: OptimWrapper) -> None:
        update_params = wrapper.update_params

        def guarded(loss: torch.Tensor, step_kwargs: Optional[dict] = None,
                    zero_kwargs: Optional[dict] = None) -> None:
            # one flag for all processes: every one skips, or none does
            flag = (~torch.isfinite(loss.detach())).any().float().reshape(1)
            all_reduce(flag, op='max')
            if not bool(flag.item()):
                return update_params(loss, step_kwargs=step_kwargs, zero_kwargs=zero_kwargs)
            self._skipped = True
            # the backward pass still runs (distributed gradient reduction expects it on every
            # process); its gradients are dropped, the step is not taken
            wrapper.backward(wrapper.scale_loss(loss))
            wrapper.zero_grad(**(zero_kwargs or {}))

        wrapper.update_params = guarded

    def before_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None) -> None:
        """Keep the buffers (BatchNorm statistics) to restore if this step is skipped."""
        self._skipped = False
        self._buffers = [b.detach().clone() for b in self._model(runner).buffers()]

    def after_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None,
                         outputs: Optional[Mapping] = None) -> None:
        """Restore a skipped step's buffers; stop at the ``patience``-th in a row."""
        terms = non_finite_terms(outputs) if isinstance(outputs, Mapping) else []
        if not self._skipped and not terms:
            self._streak = 0
            return
        model = self._model(runner)
        if self._skipped:
            with torch.no_grad():
                for buffer, saved in zip(model.buffers(), self._buffers):
                    buffer.copy_(saved)
        self._streak += 1
        where = (f'iteration {runner.iter + 1}: non-finite loss '
                 f'({", ".join(terms) or "on another process"})')
        bad_weights = first_non_finite(model.state_dict().items())
        if bad_weights is not None:
            self._fail(runner, f'training diverged at {where}, and the weights are non-finite '
                       f'({bad_weights} is the first): an earlier step diverged')
        if not self._skipped:
            self._fail(runner, f'training diverged at {where}, and the optimizer step was '
                       'applied (the model\'s train_step does not call '
                       'OptimWrapper.update_params)')
        if self.skip_nonfinite or self._streak < self.patience:
            runner.logger.warning(f'FiniteCheckHook: {where}: the optimizer step was skipped '
                                  f'({self._streak} in a row)')
            return
        in_a_row = f', {self._streak} iterations in a row' if self._streak > 1 else ''
        self._fail(runner, f'training diverged at {where}{in_a_row}; the optimizer step was '
                   'not applied')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to save non-finite weights or optimizer state (raises before the file is
        written). An optimizer state overflows without a non-finite loss or weight (Adam's
        second moment of a gradient above ~1e19 is inf in float32): each weight it updates
        then stays where it is, and a resume from that checkpoint would do the same."""
        meta = checkpoint.get('meta') or {}
        saved = f'the checkpoint of iteration {meta.get("iter", runner.iter)} is not saved'
        bad = first_non_finite((checkpoint.get('state_dict') or {}).items())
        if bad is not None:
            self._fail(runner, f'training diverged: {saved}, its weights are non-finite '
                       f'({bad} is the first)')
        bad = first_non_finite(named_tensors(checkpoint.get('optimizer') or {}, 'optimizer'))
        if bad is not None:
            self._fail(runner, f'training diverged: {saved}, its optimizer state is non-finite '
                       f'({bad} is the first; the weights it updates no longer change)')

    @staticmethod
    def _last_checkpoint(runner) -> str:
        try:
            with open(osp.join(runner.work_dir, 'last_checkpoint')) as f:
                named = f.read().strip()
        except OSError:
            named = ''
        return (f'last_checkpoint names {named}, the last finite checkpoint' if named else
                'no checkpoint was saved')

    def _fail(self, runner, what: str) -> None:
        message = (f'{what}. {self._last_checkpoint(runner)}. Lower the '
                   'learning rate (optim_wrapper.optimizer.lr) or clip gradients '
                   '(optim_wrapper.clip_grad), or tolerate such steps with '
                   f'--cfg-options {SETTING}.patience=N or {SETTING}.skip_nonfinite=True')
        runner.logger.error(message)
        raise NonFiniteError(message)
