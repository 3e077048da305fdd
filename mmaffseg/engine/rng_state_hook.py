# Copyright (c) mmaffseg contributors. All rights reserved.
"""Save and restore the random number generators with checkpoints, for bit-identical resumes.

mmengine seeds the generators once when the runner is built and does not save their states, so
a resumed run draws different random numbers (dropout, random data augmentation, the data
loader's base seed) from the uninterrupted one and ends on different weights.
:class:`RNGStateHook` stores the states of Python's ``random``, numpy's global generator and
torch's CPU (and CUDA) generators in every checkpoint (key ``rng_state``, tensors and plain
numbers only, so it loads with weights-only loading) and restores them when training resumes,
right where the uninterrupted run would continue: before the first batch of the first epoch,
or, in an iteration-based loop, after the loop has skipped the batches already trained on
(loading them draws random numbers) and before it loads the next one. Validation
during training leaves the generators as it found them, so a run that validates between two
checkpoints continues like a run resumed from the first.

In distributed runs the checkpoint (written by rank 0) holds rank 0's states, and only rank 0
restores them.
"""
import random
from typing import Callable, Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop
from mmseg.registry import HOOKS

KEY = 'rng_state'


def get_rng_state() -> dict:
    """The states of Python's, numpy's and torch's global generators (weights-only safe)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = dict(
        python=dict(version=version, state=torch.tensor(internal, dtype=torch.int64),
                    gauss=gauss),
        numpy=dict(key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
                   pos=int(np_state['state']['pos']), has_gauss=int(np_state['has_gauss']),
                   gauss=float(np_state['gauss'])),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore states returned by :func:`get_rng_state`."""
    py = state['python']
    random.setstate((py['version'], tuple(int(v) for v in py['state'].tolist()), py['gauss']))
    np_state = state['numpy']
    np.random.set_state(('MT19937', np_state['key'].numpy().astype(np.uint32),
                         np_state['pos'], np_state['has_gauss'], np_state['gauss']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _RestoreBeforeBatch:
    """Stands in for an IterBasedTrainLoop's data iterator until batch ``skip`` is requested:
    then calls ``restore``, hands the loop its iterator back and returns that batch."""

    def __init__(self, loop: IterBasedTrainLoop, skip: int, restore: Callable[[], None]) -> None:
        self.loop, self.inner = loop, loop.dataloader_iterator
        self.skip, self.restore = skip, restore
        self.served = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.served == self.skip:
            self.restore()
            self.loop.dataloader_iterator = self.inner
        self.served += 1
        return next(self.inner)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Keep the random generators' states in checkpoints and restore them on resume."""

    priority = 'VERY_HIGH'  # restore before other hooks draw random numbers

    def __init__(self) -> None:
        self._pending: Optional[dict] = None
        self._pending_position: Optional[tuple] = None
        self._before_val: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[KEY] = get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
        if KEY in checkpoint and get_rank() == 0:
            self._pending = checkpoint[KEY]
            self._pending_position = (meta.get('epoch'), meta.get('iter'))

    def before_train_epoch(self, runner) -> None:
        """Restore the loaded states if training continues from their checkpoint."""
        if self._pending is None:
            return
        state, position = self._pending, self._pending_position
        self._pending = self._pending_position = None
        if position != (runner.epoch, runner.iter):  # load_from (fine-tuning), not a resume
            return

        def restore() -> None:
            set_rng_state(state)
            runner.logger.info('RNGStateHook: restored the random generator states of the '
                               'checkpoint')

        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and runner.iter > 0:
            # the loop now skips runner.iter batches: restore just before the next one
            loop.dataloader_iterator = _RestoreBeforeBatch(loop, runner.iter, restore)
        else:
            restore()

    def before_val(self, runner) -> None:
        self._before_val = get_rng_state()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            set_rng_state(self._before_val)
            self._before_val = None
