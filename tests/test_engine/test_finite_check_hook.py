# Copyright (c) mmaffseg contributors. All rights reserved.
"""FiniteCheckHook: a non-finite loss stops (or is skipped) before it reaches the weights, and
no checkpoint of non-finite weights is written."""
import copy
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from gloo_processes import run_in_gloo_processes
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from toy_runner import ToyModel, toy_runner

from mmaffseg.engine import FiniteCheckHook
from mmaffseg.utils import NonFiniteError


class DivergingModel(ToyModel):
    """ToyModel with a BatchNorm (buffers the forward pass changes) and two loss terms, whose
    ``loss_mse`` is NaN at the given training iterations (1-based)."""

    def __init__(self, nan_at=()) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4)
        self.nan_at = set(nan_at)
        self.calls = 0

    def forward(self, x, y, mode: str = 'tensor'):
        x, y = torch.stack(x), torch.stack(y)
        out = self.linear(self.dropout(self.norm(x)))
        if mode != 'loss':
            return [dict(out=o) for o in out]
        self.calls += 1
        mse = ((out - y)**2).mean()
        if self.calls in self.nan_at:
            mse = mse * float('nan')
        return dict(loss_mse=mse, loss_small=0.01 * out.abs().mean())


class StateRecorder(Hook):
    """The model's state after every training iteration (after the other hooks)."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.states = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.states.append(copy.deepcopy(runner.model.state_dict()))


def _train(tmp_path, nan_at, max_iters=4, **hook_args):
    recorder = StateRecorder()
    runner = toy_runner(str(tmp_path / 'work'), max_iters, checkpoint_type='AtomicCheckpointHook',
                        model=DivergingModel(nan_at),
                        extra_hooks=dict(finite_check=FiniteCheckHook(**hook_args),
                                         recorder=recorder))
    return runner, recorder


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_first_non_finite_loss_stops_before_the_step(tmp_path):
    runner, recorder = _train(tmp_path, nan_at={3})
    with pytest.raises(NonFiniteError) as info:
        runner.train()
    message = str(info.value)
    assert 'iteration 3' in message and 'loss_mse=nan' in message
    assert 'loss_small' not in message  # the finite term is not blamed
    work = str(tmp_path / 'work')
    assert f'last_checkpoint names {osp.join(work, "iter_2.pth")}' in message
    assert 'skip_nonfinite=True' in message  # the switch is named
    assert len(recorder.states) == 2  # iteration 3 ended in the error
    # weights and BatchNorm statistics are those of iteration 2: the step was not applied
    assert _same(runner.model.state_dict(), recorder.states[1])
    saved = torch.load(osp.join(work, 'iter_2.pth'), map_location='cpu')['state_dict']
    assert _same(saved, recorder.states[1])
    assert not osp.exists(osp.join(work, 'iter_4.pth'))


def test_skip_nonfinite_skips_the_step_and_trains_on(tmp_path):
    runner, recorder = _train(tmp_path, nan_at={3}, skip_nonfinite=True)
    runner.train()
    states = recorder.states
    assert len(states) == 4
    assert _same(states[2], states[1])  # iteration 3 changed nothing, buffers included
    assert not _same(states[3], states[2])  # iteration 4 trained
    assert all(bool(torch.isfinite(v).all()) for v in states[3].values()
               if v.is_floating_point())


def test_patience_tolerates_a_run_of_non_finite_steps(tmp_path):
    runner, recorder = _train(tmp_path / 'a', nan_at={2}, patience=2)
    runner.train()  # one in a row: skipped
    assert _same(recorder.states[1], recorder.states[0])
    runner, _ = _train(tmp_path / 'b', nan_at={2, 3}, patience=2)
    with pytest.raises(NonFiniteError, match=r'iteration 3: .*2 iterations in a row'):
        runner.train()


def test_non_finite_weights_are_never_saved(tmp_path):
    runner, _ = _train(tmp_path, nan_at=(), max_iters=2)
    runner.train()
    with torch.no_grad():
        runner.model.norm.running_var[1] = float('inf')  # a buffer
    with pytest.raises(NonFiniteError, match=r'not saved, its weights are non-finite '
                       r'\(norm.running_var \(0 NaN, 1 inf of 4 values\)'):
        runner.save_checkpoint(str(tmp_path / 'work'), 'bad.pth')
    assert not osp.exists(tmp_path / 'work' / 'bad.pth')


def test_patience_must_be_positive():
    with pytest.raises(ValueError, match='patience'):
        FiniteCheckHook(patience=0)


def _one_rank_diverges(rank: int, world_size: int) -> dict:
    """A DDP step whose loss is NaN on rank 1 only, then a finite step."""
    from torch.nn.parallel import DistributedDataParallel
    torch.manual_seed(0)
    model = DistributedDataParallel(nn.Linear(3, 1))
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    FiniteCheckHook(skip_nonfinite=True).before_train(SimpleNamespace(optim_wrapper=wrapper))
    start = [p.detach().clone() for p in model.parameters()]
    loss = model(torch.ones(2, 3)).sum()
    wrapper.update_params(loss * float('nan') if rank == 1 else loss)
    unchanged = all(torch.equal(a, b) for a, b in zip(start, model.parameters()))
    wrapper.update_params(model(torch.ones(2, 3)).sum())  # DDP still in step
    return dict(unchanged=unchanged, params=[p.detach().clone() for p in model.parameters()],
                start=start)


def test_distributed_processes_skip_together(tmp_path):
    """A NaN on one process skips the step on all (else their weights would drift apart or
    the gradient reduction would hang)."""
    results = run_in_gloo_processes(_one_rank_diverges, tmp_path)
    assert all(r['unchanged'] for r in results)
    for a, b in zip(results[0]['params'], results[1]['params']):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(results[0]['params'],
                                                       results[0]['start']))
