# Copyright (c) mmaffseg contributors. All rights reserved.
"""Checkpoint writing and resuming: atomic files, resume fallback, RNG states, strict loading."""
import os
import os.path as osp

import pytest
import torch
from toy_runner import ToyModel, toy_runner

import mmaffseg  # noqa: F401
from mmaffseg.utils import (
    CheckpointError,
    atomic_io,
    check_state_dict,
    load_model_weights,
    resolve_resume_checkpoint,
)

ATOMIC_HOOKS = dict(checkpoint_type='AtomicCheckpointHook')


def test_atomic_writes_apply_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_io.atomic_write_bytes(str(tmp_path / 'a.bin'), b'x')
        os.umask(0o027)
        atomic_io.atomic_write_bytes(str(tmp_path / 'b.bin'), b'x')
    finally:
        os.umask(old)
    assert oct(os.stat(tmp_path / 'a.bin').st_mode & 0o777) == oct(0o644)
    assert oct(os.stat(tmp_path / 'b.bin').st_mode & 0o777) == oct(0o640)


@pytest.mark.parametrize('killed_write', [1, 2])  # during iter_4.pth, during last_checkpoint
def test_kill_while_writing_leaves_complete_files(killed_write, tmp_path, monkeypatch):
    work = str(tmp_path / 'work')
    toy_runner(work, 2, **ATOMIC_HOOKS).train()
    pointer = osp.join(work, 'last_checkpoint')
    with open(pointer) as f:
        assert f.read() == osp.join(work, 'iter_2.pth')

    class Killed(BaseException):
        pass

    writes = []
    write_all = atomic_io._write_all

    def killed_midway(f, data):
        writes.append(f.name)
        if len(writes) == killed_write:
            f.write(data[:len(data) // 2])
            raise Killed
        write_all(f, data)

    monkeypatch.setattr(atomic_io, '_write_all', killed_midway)
    with pytest.raises(Killed):
        toy_runner(work, 4, resume=True, **ATOMIC_HOOKS).train()
    monkeypatch.undo()
    with open(pointer) as f:
        assert f.read() == osp.join(work, 'iter_2.pth')  # the previous pointer, never empty
    newest = osp.join(work, 'iter_4.pth')
    if killed_write == 1:
        assert not osp.exists(newest)  # no partial checkpoint under the real name
    else:
        assert torch.load(newest, map_location='cpu')['meta']['iter'] == 4
    assert resolve_resume_checkpoint(work) == osp.join(work, 'iter_2.pth')


def test_oldest_checkpoint_removed_only_after_new_one(tmp_path):
    work = str(tmp_path / 'work')
    toy_runner(work, 6, max_keep_ckpts=2, **ATOMIC_HOOKS).train()
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == ['iter_4.pth',
                                                                         'iter_6.pth']
    toy_runner(work, 8, resume=True, max_keep_ckpts=2, **ATOMIC_HOOKS).train()
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == ['iter_6.pth',
                                                                         'iter_8.pth']


@pytest.mark.parametrize('pointer', ['', 'missing', 'broken', 'unreadable'])
def test_resume_falls_back_to_newest_readable_checkpoint(pointer, tmp_path, monkeypatch):
    import mmaffseg.utils.checkpoint as checkpoint_module
    said = []
    monkeypatch.setattr(checkpoint_module, 'print_log', lambda msg, **kw: said.append(msg))
    work = str(tmp_path / 'work')
    toy_runner(work, 4).train()  # mmengine's own hook: iter_2.pth, iter_4.pth
    newest = osp.join(work, 'iter_4.pth')
    if pointer == 'broken':  # last_checkpoint names a truncated newest checkpoint
        with open(newest, 'rb') as f:
            data = f.read()
        with open(newest, 'wb') as f:
            f.write(data[:len(data) // 2])
        expected = osp.join(work, 'iter_2.pth')
    else:
        expected = newest
    with open(osp.join(work, 'last_checkpoint'), 'wb') as f:
        f.write({'': b'', 'missing': osp.join(work, 'iter_9.pth').encode(), 'broken':
                 newest.encode(), 'unreadable': b'\xff\xfe\x00'}[pointer])
    assert resolve_resume_checkpoint(work) == expected
    assert len(said) == 1 and f'resuming from the newest readable checkpoint {expected}' in said[0]


def test_resume_without_any_checkpoint_starts_afresh(tmp_path):
    assert resolve_resume_checkpoint(str(tmp_path)) is None
    (tmp_path / 'last_checkpoint').write_text('')
    (tmp_path / 'iter_2.pth').write_bytes(b'')
    assert resolve_resume_checkpoint(str(tmp_path)) is None


def _final_weights(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


@pytest.mark.parametrize('validate,by_epoch', [(False, False), (True, False), (True, True)])
def test_resume_is_bit_identical_with_rng_state_hook(validate, by_epoch, tmp_path):
    hooks = dict(extra_hooks=dict(rng_state=dict(type='RNGStateHook')), by_epoch=by_epoch,
                 val_interval=(1 if by_epoch else 2) if validate else 0)
    total, first = (3, 1) if by_epoch else (6, 2)
    straight = toy_runner(str(tmp_path / 'straight'), total, **hooks)
    straight.train()
    toy_runner(str(tmp_path / 'split'), first, **hooks).train()
    resumed = toy_runner(str(tmp_path / 'split'), total, resume=True, **hooks)
    resumed.train()
    a, b = _final_weights(straight), _final_weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), (a, b)


def test_resume_without_rng_state_hook_differs(tmp_path):
    """Guards the test above: the toy training does depend on the generators."""
    straight = toy_runner(str(tmp_path / 'straight'), 6)
    straight.train()
    toy_runner(str(tmp_path / 'split'), 2).train()
    resumed = toy_runner(str(tmp_path / 'split'), 6, resume=True)
    resumed.train()
    a, b = _final_weights(straight), _final_weights(resumed)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_strict_loading_names_the_mismatch(tmp_path):
    model = ToyModel()
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict={'linear.weight': torch.zeros(3, 4), 'extra.bias': torch.zeros(1)},
                    meta={}), path)
    with pytest.raises(CheckpointError) as info:
        load_model_weights(model, path)
    msg = str(info.value)
    assert path in msg and '1 missing keys (linear.bias)' in msg
    assert '1 unexpected keys (extra.bias)' in msg
    assert 'linear.weight [3, 4] vs [1, 4]' in msg and 'strict=False' in msg
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict={'module.' + k: v for k, v in model.state_dict().items()}), good)
    load_model_weights(ToyModel(), good)  # "module." prefixes are stripped as mmengine does
    check_state_dict(model, model.state_dict(), 'in memory')


def test_load_local_weights_names_the_checkpoint(tmp_path):
    """The pseudo-label runner's strict loader: 'module.' prefixes stripped, a missing
    num_batches_tracked accepted (converted weights), anything else names ``what``."""
    from mmaffseg.utils.checkpoint import load_local_weights
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    torch.manual_seed(0)
    src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    state = {f'module.{k}': v for k, v in src.state_dict().items()
             if not k.endswith('num_batches_tracked')}
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=state), good)
    load_local_weights(net, good, 'CAM checkpoint (--cam-checkpoint)')
    for (k, v), ref in zip(net.state_dict().items(), src.state_dict().values()):
        assert torch.equal(v, ref), k
    with pytest.raises(FileNotFoundError, match='--cam-checkpoint: checkpoint file'):
        load_local_weights(net, str(tmp_path / 'none.pth'), '--cam-checkpoint')
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict={'0.weight': state['module.0.weight']}), bad)
    with pytest.raises(CheckpointError, match=r'\(--aff-checkpoint\) does not fit the '
                       r'Sequential of the config: missing keys \[.0\.bias'):
        load_local_weights(net, bad, '--aff-checkpoint')
