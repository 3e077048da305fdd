# Copyright (c) mmaffseg contributors. All rights reserved.
"""Work-dir integrity through the real tools: one run per work dir, resume only on matching
settings, no non-finite model trained on, saved or tested, and SIGTERM / a full disk while a
checkpoint is written.

Faults are injected in the tool's own process by :data:`DRIVER` (``python -c DRIVER FAULT
ARGV``), which patches one function and runs ``tools/train.py`` as ``python tools/train.py``
would: ``hold`` waits in ``Runner.train`` until a file appears, ``slow_write`` stalls the second
checkpoint's write half-way, ``no_space`` fails it with ENOSPC, ``small_disk`` reports 1 MiB
free.
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from typing import Optional

import pytest
import torch
from test_cli.test_tools_round_trip import QUICKSTART, _options
from tool_runner import REPO, run_tool, run_tools_in_one_process
from untrained import save_untrained, small_test_config

pytestmark = pytest.mark.slow
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')

DRIVER = r"""
import errno, json, os, runpy, shutil, sys, time
from mmaffseg.utils import atomic_io
fault, argv = sys.argv[1], json.loads(sys.argv[2])
write_all, big = atomic_io._write_all, []


def second_checkpoint(f, data, then):
    if len(data) > 1 << 20:
        big.append(len(data))
        if len(big) == 2:
            f.write(data[:len(data) // 2])
            f.flush()
            then()
    write_all(f, data)


def stall():
    print('WRITING', flush=True)
    time.sleep(300)


def no_space():
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


if fault.startswith('hold:'):
    from mmengine.runner import Runner
    train = Runner.train

    def held(self):
        print('TRAINING', flush=True)
        while not os.path.exists(fault[len('hold:'):]):
            time.sleep(0.1)
        return train(self)
    Runner.train = held
elif fault in ('slow_write', 'no_space'):
    then = stall if fault == 'slow_write' else no_space
    atomic_io._write_all = lambda f, data: second_checkpoint(f, data, then)
elif fault == 'small_disk':
    usage = shutil.disk_usage
    shutil.disk_usage = lambda path: usage(path)._replace(free=1 << 20)
sys.argv = argv
runpy.run_path(argv[0], run_name='__main__')
"""


def _train_argv(work: str, root: str, iters: int, *extra: str, options=()) -> list:
    return (['tools/train.py', QUICKSTART, '--work-dir', work, *extra, '--cfg-options'] +
            _options(root, iters) + ['train_cfg.val_interval=100'] + list(options))


def _driver(fault: str, argv: list) -> list:
    return ['-c', DRIVER, fault, json.dumps(argv)]


def _start(fault: str, argv: list, ready: str) -> subprocess.Popen:
    """Run the driver in the background until it prints ``ready``."""
    proc = subprocess.Popen([sys.executable] + _driver(fault, argv), cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if line.strip() == ready:
            return proc
    proc.wait()
    raise AssertionError(f'{fault}: the run ended (exit {proc.returncode}) before {ready}')


def _error_line(out: str, code: Optional[int] = None) -> str:
    """The one ``<tool>: error:`` line of a failed run's output, without a traceback (and, for
    a ``code`` given, an exit status 2)."""
    lines = [line for line in out.splitlines() if ': error: ' in line]
    assert code in (None, 2) and len(lines) == 1 and 'Traceback' not in out, \
        f'exit {code}\n{out[-3000:]}'
    return lines[0]


def _finite(path: str) -> bool:
    state = torch.load(path, map_location='cpu')['state_dict']
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def _temp_files(work: str) -> list:
    return [n for n in os.listdir(work) if n.endswith('.tmp')]


def _pointer(work: str) -> str:
    with open(osp.join(work, 'last_checkpoint')) as f:
        return f.read().strip()


def test_one_run_per_work_dir_and_resume_only_on_its_settings(tiny_synthetic_root, tmp_path):
    """A second run into a running one's work dir stops at once (it replaced the first run's
    checkpoints and dumped config); afterwards, a fresh run or a --resume with other settings
    stops naming the change and the override."""
    work, go = str(tmp_path / 'work'), str(tmp_path / 'go')
    first = _start(f'hold:{go}', _train_argv(work, tiny_synthetic_root, 2), 'TRAINING')
    try:
        out = run_tool(_train_argv(work, tiny_synthetic_root, 2), expect=2, env=ENV)
    finally:
        open(go, 'w').close()
        first.stdout.read()
        first.wait(timeout=600)
    line = _error_line(out)
    assert f'--work-dir: the folder {work} is in use by another run (pid {first.pid}' in line
    assert first.returncode == 0
    assert _pointer(work) == osp.join(work, 'iter_2.pth') and _finite(_pointer(work))

    fresh, resume = run_tools_in_one_process([
        _train_argv(work, tiny_synthetic_root, 2, options=['optim_wrapper.optimizer.lr=0.01']),
        _train_argv(work, tiny_synthetic_root, 3, '--resume',
                    options=['model.decode_head.dropout_ratio=0.5'])], env=ENV)
    line = _error_line(fresh[1], fresh[0])
    assert f'--work-dir: the folder {work} holds checkpoints of a training with other ' \
           'settings (optim_wrapper.optimizer.lr: 0.002 -> 0.01)' in line
    assert '--overwrite' in line
    line = _error_line(resume[1], resume[0])
    assert f'--resume: the work dir {work} holds a training of other settings ' \
           '(model.decode_head.dropout_ratio: 0.1 -> 0.5)' in line
    assert '--accept-config-change' in line
    assert _pointer(work) == osp.join(work, 'iter_2.pth')  # nothing was replaced


def test_divergence_stops_before_a_non_finite_checkpoint(tiny_synthetic_root, tmp_path):
    """lr=1e12: NaN loss from iteration 2; it was saved as iter_2..iter_4 with exit 0."""
    work = str(tmp_path / 'work')
    out = run_tool(_train_argv(work, tiny_synthetic_root, 4,
                               options=['optim_wrapper.optimizer.lr=1e12']), expect=1, env=ENV)
    line = _error_line(out)
    assert 'train.py: error: training diverged at iteration ' in line, line
    assert 'non-finite loss (loss=nan' in line or 'non-finite loss (loss=inf' in line, line
    assert 'skip_nonfinite=True' in line
    checkpoints = [n for n in os.listdir(work) if n.endswith('.pth')]
    assert all(_finite(osp.join(work, n)) for n in checkpoints), checkpoints
    if osp.exists(osp.join(work, 'last_checkpoint')):
        assert _finite(_pointer(work)) and f'last_checkpoint names {_pointer(work)}' in line


def test_a_nan_weight_is_refused_by_test_py(tiny_synthetic_root, tmp_path):
    """It tested silently (exit 0, an mIoU)."""
    cfg = small_test_config(QUICKSTART)
    ckpt = save_untrained(cfg, str(tmp_path / 'untrained.pth'))
    data = torch.load(ckpt, map_location='cpu')
    data['state_dict']['decode_head.conv_seg.weight'][3, 0, 0, 0] = float('nan')
    nan_ckpt = str(tmp_path / 'nan.pth')
    torch.save(data, nan_ckpt)
    argv = ['tools/test.py', QUICKSTART, nan_ckpt, '--work-dir', str(tmp_path / 'test'),
            '--cfg-options'] + _options(tiny_synthetic_root, 2)
    (code, err), (allowed, allowed_err) = run_tools_in_one_process(
        [argv, argv[:3] + ['--allow-nonfinite-weights'] + argv[3:]], env=ENV)
    line = _error_line(err, code)
    assert (f'test.py: error: CHECKPOINT: checkpoint {nan_ckpt} holds non-finite weights: '
            'decode_head.conv_seg.weight (1 NaN, 0 inf of ') in line, line
    assert '--allow-nonfinite-weights' in line
    assert allowed == 0, allowed_err[-3000:]


def test_sigterm_during_a_checkpoint_write_leaves_no_temporary_file(tiny_synthetic_root,
                                                                    tmp_path):
    """It left a checkpoint-sized .iter_2.pth.*.tmp forever. A temporary file that a SIGKILL
    leaves is swept by the next run."""
    work = str(tmp_path / 'work')
    proc = _start('slow_write', _train_argv(work, tiny_synthetic_root, 2), 'WRITING')
    assert len(_temp_files(work)) == 1  # the half-written iter_2.pth
    proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    assert proc.wait(timeout=120) == -signal.SIGTERM
    assert _temp_files(work) == []
    assert _pointer(work) == osp.join(work, 'iter_1.pth')

    killed = osp.join(work, '.iter_2.pth.k1ll3d_x.tmp')  # what a SIGKILL leaves
    with open(killed, 'wb') as f:
        f.write(b'\0' * 4096)
    hour_ago = time.time() - 3600
    os.utime(killed, (hour_ago, hour_ago))
    out = run_tool(_train_argv(work, tiny_synthetic_root, 2, '--resume'), env=ENV)
    assert 'resumed epoch: 0, iter: 1' in out, out[-3000:]
    assert _temp_files(work) == [] and 'removed 1 temporary file(s)' in out
    assert _pointer(work) == osp.join(work, 'iter_2.pth')


def test_full_disk_is_one_line_and_loses_nothing(tiny_synthetic_root, tmp_path):
    """ENOSPC while writing iter_2.pth was a raw OSError traceback; too little space for one
    checkpoint was not noticed before training."""
    work = str(tmp_path / 'work')
    out = run_tool(_driver('no_space', _train_argv(work, tiny_synthetic_root, 2)), expect=2,
                   env=ENV)
    line = _error_line(out)
    assert f'train.py: error: the disk of {work} is full (' in line and 'MiB free)' in line
    assert 'while writing iter_2.pth' in line and '--resume' in line
    assert _pointer(work) == osp.join(work, 'iter_1.pth') and _finite(_pointer(work))
    assert not osp.exists(osp.join(work, 'iter_2.pth')) and _temp_files(work) == []

    work = str(tmp_path / 'small')
    out = run_tool(_driver('small_disk', _train_argv(work, tiny_synthetic_root, 2)), expect=2,
                   env=ENV)
    line = _error_line(out)
    assert (f'train.py: error: --work-dir: the folder {work} has 1.0 MiB free, less than the '
            in line and 'MiB needed for one checkpoint' in line), line
    assert not [n for n in os.listdir(work) if n.endswith('.pth')]
