# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/benchmark_suite.py end to end: two methods x one seed of the synthetic suite (--tiny),
killed in the middle of the second run, rerun: the finished run is not retrained, the
interrupted one resumes from its checkpoint, and the collected table has both; the console
shows the suite's progress, the evaluation's output goes to the run folder; a rerun with
other settings is refused; --collect-only rebuilds the results from the run folders alone.
The progress bookkeeping (log parsing, ETAs) is tested alone with a fake clock."""
import hashlib
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers import tiny_synthetic_overrides
from tool_runner import REPO, cfg_option_args, load_tool, run_tool

METHODS = ['deeplabv3plus', 'hanet-neck']


def _args(root: str, work_dir: str, extra_options: dict = None) -> list:
    options = tiny_synthetic_overrides(root)
    options.update(extra_options or {})
    return (['tools/benchmark_suite.py', 'synthetic', '--tiny', '--data-root', root,
             '--work-dir', work_dir, '--seeds', '0', '--methods'] + METHODS +
            ['--flops-shape', '64', '128', '--cfg-options'] + cfg_option_args(options))


def _wait_for(path: str, proc: subprocess.Popen, timeout: float) -> None:
    end = time.time() + timeout
    while not osp.exists(path):
        assert proc.poll() is None, proc.stdout.read()[-4000:]
        assert time.time() < end, f'{path} did not appear in {timeout} s'
        time.sleep(0.05)


def test_kill_resume_and_collect(tiny_synthetic_root, tmp_path, capsys):
    work = str(tmp_path / 'suite')
    first, second = (osp.join(work, m, 'seed0') for m in METHODS)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable] + _args(tiny_synthetic_root, work), cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        # kill the suite (and its training child) once the second run saved its first
        # checkpoint (--tiny: every 2 of 4 iterations)
        _wait_for(osp.join(second, 'last_checkpoint'), proc, timeout=600)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert osp.isfile(osp.join(first, 'done.json'))
    assert not osp.exists(osp.join(second, 'done.json'))
    assert not osp.exists(osp.join(second, 'iter_4.pth'))
    kept = {f: os.stat(osp.join(first, f)).st_mtime_ns
            for f in ('done.json', 'iter_4.pth', 'train.log')}

    out = run_tool(_args(tiny_synthetic_root, work), env=env)
    assert re.search(r'deeplabv3plus seed 0: done \(mIoU [0-9.]+\), skipped', out), out[-3000:]
    # the console: suite progress with the resumed training's iterations and ETAs ...
    assert re.search(r'^\[run 2/2\] hanet-neck seed 0: training iter [34]/4, run ETA '
                     r'\d+:\d\d:\d\d \| suite: 0/2 runs done, 1 skipped, ETA ~\d+:\d\d:\d\d$', out,
                     re.M), out[-3000:]
    assert re.search(r'^\[run 2/2\] hanet-neck seed 0: mIoU [0-9.]+ \| suite: 1/2 runs done, '
                     r'1 skipped,', out, re.M), out[-3000:]
    # ... and not the evaluation's environment and config dump, which is in the run folder
    with open(osp.join(second, 'eval.log')) as f:
        eval_log = f.read()
    for dump in ('System environment:', 'Runtime environment:', 'Iter(test)'):
        assert dump in eval_log and dump not in out, dump
    assert len(out.splitlines()) < 40, out[-3000:]
    assert {f: os.stat(osp.join(first, f)).st_mtime_ns for f in kept} == kept  # not retrained
    with open(osp.join(second, 'train.log')) as f:
        log = f.read()
    assert re.search(r'resumed epoch: \d+, iter: 2\b', log), log[-3000:]
    assert osp.isfile(osp.join(second, 'done.json'))

    with open(osp.join(work, 'results.json')) as f:
        results = json.load(f)
    for method, run_dir in zip(METHODS, (first, second)):
        with open(osp.join(run_dir, 'done.json')) as f:
            done = json.load(f)
        row = results['methods'][method]
        assert row['seeds_done'] == [0] and row['seeds_missing'] == []
        assert row['mIoU_mean'] == round(done['metrics']['mIoU'], 2)
        assert len(row['per_class_iou_mean']) == 19
        assert done['params_m'] > 0 and done['gflops_whole'] > 0 and done['fps'] > 0
    with open(osp.join(work, 'results.md')) as f:
        table = f.read()
    for method in METHODS:
        assert re.search(rf'^\| {method} \| [0-9.]+ \| 1 \|', table, re.M), table
    assert osp.getsize(osp.join(work, 'results.png')) > 0

    # other settings in the same work dir: refused, naming the folder, the runs and the
    # setting; nothing changed
    tool = load_tool('benchmark_suite.py')
    with pytest.raises(SystemExit) as exit_info:
        tool.main(_args(tiny_synthetic_root, work, {'optim_wrapper.optimizer.lr': 0.02})[1:])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f'the folder {work} holds results of other inputs' in err, err[-2000:]
    assert f"stage '{METHODS[0]}/seed0' was made from other inputs " \
        '(optim_wrapper.optimizer.lr: 0.01 -> 0.02)' in err, err[-2000:]
    assert {f: os.stat(osp.join(first, f)).st_mtime_ns for f in kept} == kept

    # --collect-only: the results from the run folders alone; a missing seed is reported
    for name in ('results.json', 'results.md', 'results.png'):
        os.remove(osp.join(work, name))
    tool.main(['synthetic', '--work-dir', work, '--seeds', '0', '1', '--methods'] + METHODS +
              ['--collect-only'])
    with open(osp.join(work, 'results.json')) as f:
        again = json.load(f)
    assert again['methods'][METHODS[0]]['mIoU_mean'] == results['methods'][METHODS[0]][
        'mIoU_mean']
    assert again['methods'][METHODS[1]]['seeds_missing'] == [1]
    assert osp.isfile(osp.join(work, 'results.png'))


@pytest.fixture
def fake_suite(monkeypatch):
    """benchmark_suite with training and evaluation replaced by stand-ins that record their
    calls: the record, check and lock of its --work-dir, in seconds."""
    tool = load_tool('benchmark_suite.py')
    calls = []

    def train(run_dir, launcher, gpus, port, *progress):
        calls.append(('train', run_dir))
        cfg = tool.Config.fromfile(osp.join(run_dir, 'config.py'))
        with open(tool.final_checkpoint(run_dir, cfg), 'wb') as f:
            f.write(b'weights of ' + run_dir.encode())

    def evaluate(cfg, run_dir, checkpoint, *args, **kwargs):
        calls.append(('evaluate', run_dir))
        return dict(metrics=dict(mIoU=1.0))

    monkeypatch.setattr(tool, 'train', train)
    monkeypatch.setattr(tool, 'evaluate', evaluate)
    monkeypatch.setattr(tool, 'collect', lambda *args: {})
    return tool, calls


def _fake_args(root, work, *extra, options=None):
    return (['synthetic', '--tiny', '--data-root', root, '--work-dir', work, '--seeds', '0',
             '--methods', METHODS[0], *extra, '--cfg-options'] +
            cfg_option_args(options or tiny_synthetic_overrides(root)))


def _exit_2(tool, argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        tool.main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_reruns_with_other_inputs_stop_and_overwrite_redoes_only_those(
        fake_suite, tiny_synthetic_root, tmp_path, capsys):
    """A finished run was skipped whatever the evaluation settings (--tta, --flops-shape) or
    checkpoint now: exit 0 with the old done.json. Now each stops before any work naming the
    run's stage and the change; --overwrite re-evaluates without retraining."""
    tool, calls = fake_suite
    work = str(tmp_path / 'suite')
    run_dir = osp.join(work, METHODS[0], 'seed0')
    args = _fake_args(tiny_synthetic_root, work)
    tool.main(args)
    assert calls == [('train', run_dir), ('evaluate', run_dir)]
    done = osp.join(run_dir, 'done.json')
    kept = os.stat(done).st_mtime_ns
    tool.main(args)  # the same inputs: skipped
    assert len(calls) == 2 and os.stat(done).st_mtime_ns == kept

    err = _exit_2(tool, _fake_args(tiny_synthetic_root, work, '--tta'), capsys)
    assert f'--work-dir: the folder {work} holds results of other inputs' in err
    assert f"stage '{METHODS[0]}/seed0/eval' was made from other inputs (tta: false -> true)" \
        in err and '--overwrite' in err
    options = dict(tiny_synthetic_overrides(tiny_synthetic_root))
    options['optim_wrapper.optimizer.lr'] = 0.02
    err = _exit_2(tool, _fake_args(tiny_synthetic_root, work, options=options), capsys)
    assert f"stage '{METHODS[0]}/seed0' was made from other inputs " \
        '(optim_wrapper.optimizer.lr: 0.01 -> 0.02)' in err
    assert len(calls) == 2 and os.stat(done).st_mtime_ns == kept  # nothing done

    tool.main(_fake_args(tiny_synthetic_root, work, '--tta', '--overwrite'))
    assert calls[2:] == [('evaluate', run_dir)]  # re-evaluated, not retrained

    # another checkpoint in the run folder (e.g. trained again by hand): stops, then redone
    checkpoint = next(osp.join(run_dir, f) for f in os.listdir(run_dir) if f.endswith('.pth'))
    with open(checkpoint, 'ab') as f:
        f.write(b' retrained')
    err = _exit_2(tool, _fake_args(tiny_synthetic_root, work, '--tta'), capsys)
    assert "(checkpoint: sha256:" in err
    tool.main(_fake_args(tiny_synthetic_root, work, '--tta', '--overwrite'))
    assert calls[3:] == [('evaluate', run_dir)]

    # a second suite into the same --work-dir
    with tool.FolderLock(work, '--work-dir'):
        err = _exit_2(tool, _fake_args(tiny_synthetic_root, work, '--tta'), capsys)
    assert f'the folder {work} is in use by another run (pid {os.getpid()}' in err


def test_run_folder_of_an_earlier_version_is_taken_over(fake_suite, tiny_synthetic_root,
                                                        tmp_path, capsys):
    """A run folder with a matching config_hash and no record (written before the record
    existed) keeps its training; its done.json is redone with --overwrite."""
    tool, calls = fake_suite
    work = str(tmp_path / 'suite')
    run_dir = osp.join(work, METHODS[0], 'seed0')
    tool.main(_fake_args(tiny_synthetic_root, work))
    os.remove(osp.join(work, 'provenance.json'))  # as an earlier version left it
    err = _exit_2(tool, _fake_args(tiny_synthetic_root, work), capsys)
    assert f"stage '{METHODS[0]}/seed0/eval' has files but no provenance record" in err
    assert f"stage '{METHODS[0]}/seed0' " not in err  # the training is taken over
    tool.main(_fake_args(tiny_synthetic_root, work, '--overwrite'))
    assert calls == [('train', run_dir), ('evaluate', run_dir), ('evaluate', run_dir)]


def test_training_log_lines_are_parsed():
    tool = load_tool('benchmark_suite.py')
    line = ('12/07 20:35:44 - mmengine - INFO - Iter(train) [ 50/300]  base_lr: 1.0e-02 '
            'lr: 9.9e-03  eta: 0:01:23  time: 0.4  data_time: 0.01  memory: 0  loss: 2.1')
    assert tool.parse_train_iteration(line) == (50, 300, 83.0)
    assert tool.parse_train_iteration(line.replace('0:01:23', '1 day, 2:03:04')) == (
        50, 300, 93784.0)
    assert tool.parse_train_iteration(line.replace('Iter(train)', 'Iter(val)')) is None
    assert tool.parse_train_iteration('Iter(train) [1/4] no eta here') is None


def test_console_has_no_pkg_resources_warnings_and_counts_skipped_runs_apart(
        tiny_synthetic_root, tmp_path):
    """The real tool with ``--launcher slurm`` (it reads every method's config, trains
    nothing): mmengine's pkg_resources deprecation warning (one per config read) stays off
    the console, and the runs it did not do are counted as skipped, not done."""
    work = str(tmp_path / 'suite')
    options = tiny_synthetic_overrides(tiny_synthetic_root)
    env = dict(os.environ, OMP_NUM_THREADS='1', PARTITION='gpu')
    env.pop('PYTHONWARNINGS', None)
    out = run_tool(['tools/benchmark_suite.py', 'synthetic', '--tiny', '--data-root',
                    tiny_synthetic_root, '--work-dir', work, '--seeds', '0', '--methods',
                    'deeplabv3plus', 'deeplabv3plus-crf', '--launcher', 'slurm',
                    '--cfg-options'] + cfg_option_args(options), env=env)
    assert 'pkg_resources' not in out and 'Warning' not in out, out[-3000:]
    lines = [line for line in out.splitlines() if line.startswith('[run ')]
    assert len(lines) == 2, out[-3000:]
    assert lines[0].startswith('[run 1/2] deeplabv3plus seed 0: to train on Slurm: ')
    assert lines[0].endswith('| suite: 0/2 runs done, 1 skipped, ETA ~0:00:00'), lines[0]
    assert lines[1] == ('[run 2/2] deeplabv3plus-crf seed 0: deeplabv3plus seed 0 has not '
                        'finished training, skipped | suite: 0/2 runs done, 2 skipped, '
                        'ETA ~0:00:00')


def test_suite_progress_lines_and_eta():
    """Four runs (train, train, eval-only, eval-only) on a fake clock: each line names the run,
    the runs done, skipped and failed (apart) and the suite ETA, estimated from the current
    training and the runs done."""
    tool = load_tool('benchmark_suite.py')
    now = [0.0]
    lines = []
    progress = tool.SuiteProgress([False, False, True, True], interval_s=30,
                                  clock=lambda: now[0], write=lines.append)
    progress.start(1, 'a seed 0')
    progress.training()
    now[0] = 10
    progress.iteration(1, 4, 30.0)  # this training: 40 s in all; run 2 likewise
    now[0] = 20
    progress.iteration(2, 4, 20.0)  # within interval_s of the last line: not printed
    assert lines == ['[run 1/4] a seed 0: training iter 1/4, run ETA 0:00:30 | suite: 0/4 '
                     'runs done, ETA ~0:01:10']  # 30 s left + 40 s (run 2) + 0 + 0 (evals)
    now[0] = 40
    progress.evaluating()
    now[0] = 50
    progress.finished()  # 50 s, of which 10 s evaluating
    progress.say('mIoU 1.00')
    assert lines[-1] == ('[run 1/4] a seed 0: mIoU 1.00 | suite: 1/4 runs done, '
                         'ETA ~0:01:10')  # 50 s (run 2) + 10 s + 10 s (evaluations)
    progress.start(2, 'b seed 0')
    progress.finished('skipped')  # estimates nothing, is not done
    progress.start(3, 'c seed 0')
    progress.say('evaluating')
    assert lines[-1] == ('[run 3/4] c seed 0: evaluating | suite: 1/4 runs done, 1 skipped, '
                         'ETA ~0:00:10')
    progress.finished('failed')
    progress.start(4, 'd seed 0')
    progress.say('evaluating')
    assert lines[-1] == ('[run 4/4] d seed 0: evaluating | suite: 1/4 runs done, 1 skipped, '
                         '1 failed, ETA ~0:00:00')
    with pytest.raises(ValueError, match="outcome 'ok' is not one of"):
        progress.finished('ok')


def test_amp_and_channels_last_are_settings_of_each_run(fake_suite, tiny_synthetic_root,
                                                        tmp_path, capsys, monkeypatch):
    """A run trained in fp32 is not reused for --amp or --channels-last: the rerun stops
    before any work naming the changed settings; --overwrite retrains; done.json and
    results.md say how each method trained."""
    tool, calls = fake_suite
    work = str(tmp_path / 'suite')
    run_dir = osp.join(work, METHODS[0], 'seed0')

    def evaluate(cfg, run_dir, checkpoint, *args, **kwargs):
        calls.append(('evaluate', run_dir))
        return dict(metrics=dict(mIoU=1.0), per_class_iou={'road': 1.0}, classes=['road'])

    monkeypatch.setattr(tool, 'evaluate', evaluate)
    tool.main(_fake_args(tiny_synthetic_root, work))
    assert calls == [('train', run_dir), ('evaluate', run_dir)]
    err = _exit_2(tool, _fake_args(tiny_synthetic_root, work, '--amp'), capsys)
    assert f"stage '{METHODS[0]}/seed0' was made from other inputs" in err
    assert ('optim_wrapper.dtype: "<absent>" -> "bfloat16"; optim_wrapper.loss_scale.enabled: '
            '"<absent>" -> false; optim_wrapper.type: "OptimWrapper" -> '
            '"AnyDeviceAmpOptimWrapper"') in err, err
    err = _exit_2(tool, _fake_args(tiny_synthetic_root, work, '--channels-last'), capsys)
    assert 'ChannelsLastHook' in err, err
    assert len(calls) == 2

    tool.main(_fake_args(tiny_synthetic_root, work, '--amp', '--channels-last', '--overwrite'))
    assert calls[2:] == [('train', run_dir), ('evaluate', run_dir)]  # retrained
    cfg = tool.Config.fromfile(osp.join(run_dir, 'config.py'))
    assert cfg.optim_wrapper.type == 'AnyDeviceAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    with open(osp.join(run_dir, 'done.json')) as f:
        done = json.load(f)
    assert (done['amp'], done['channels_last']) == ('bfloat16', True)
    tool.main(_fake_args(tiny_synthetic_root, work, '--amp', '--channels-last'))  # the same
    assert len(calls) == 4

    monkeypatch.undo()  # the real collect
    suite, _ = tool.load_suite('synthetic')
    results = tool.collect(work, suite, [METHODS[0]], [0], 'synthetic')
    assert results['methods'][METHODS[0]]['training'] == 'AMP bf16 + channels-last'
    with open(osp.join(work, 'results.md')) as f:
        table = f.read()
    assert '| test | training |' in table and '| whole | AMP bf16 + channels-last |' in table
    assert tool.training_label({}) == 'fp32'  # done.json of a run made before --amp existed
    assert tool.training_label(dict(amp='float16')) == 'AMP fp16'


def _checkpoints(run_dir: str) -> dict:
    """Every checkpoint of a run folder: name -> (mtime_ns, sha256)."""
    out = {}
    for name in sorted(f for f in os.listdir(run_dir) if f.endswith('.pth')):
        path = osp.join(run_dir, name)
        with open(path, 'rb') as f:
            out[name] = (os.stat(path).st_mtime_ns, hashlib.sha256(f.read()).hexdigest())
    return out


def test_slide_test_mode_evaluates_the_finished_trainings(tiny_synthetic_root, tmp_path):
    """--test-mode slide on a finished work dir only evaluates: the trained checkpoints, the
    training log and the protocol's done.json stay as they are; the sliding-window results go
    to done-slide.json / results-slide.*; the training's record holds no test-time setting."""
    tool = load_tool('benchmark_suite.py')
    work = str(tmp_path / 'suite')
    run_dir = osp.join(work, METHODS[0], 'seed0')
    args = _fake_args(tiny_synthetic_root, work)
    args[args.index('--cfg-options'):args.index('--cfg-options')] = ['--flops-shape', '64',
                                                                    '128']
    tool.main(args)
    kept = _checkpoints(run_dir)
    assert [name for name in kept] == ['iter_2.pth', 'iter_4.pth']
    kept.update({f: os.stat(osp.join(run_dir, f)).st_mtime_ns
                 for f in ('train.log', 'done.json', 'config.py', 'config_hash')})
    kept['results.md'] = os.stat(osp.join(work, 'results.md')).st_mtime_ns

    tool.main(args + ['--test-mode', 'slide'])  # exit status 2 when the test mode was hashed
    now = _checkpoints(run_dir)
    now.update({f: os.stat(osp.join(run_dir, f)).st_mtime_ns
                for f in ('train.log', 'done.json', 'config.py', 'config_hash')})
    now['results.md'] = os.stat(osp.join(work, 'results.md')).st_mtime_ns
    assert now == kept  # not retrained, the protocol's evaluation kept
    with open(osp.join(run_dir, 'done.json')) as f:
        whole = json.load(f)
    with open(osp.join(run_dir, 'done-slide.json')) as f:
        slide = json.load(f)
    assert (whole['test_mode'], slide['test_mode']) == ('whole', 'slide 64x128 stride 43x85')
    assert slide['checkpoint'] == whole['checkpoint'] == osp.join(run_dir, 'iter_4.pth')
    assert slide['config_hash'] == whole['config_hash']
    assert slide['windows_per_image'] == 9 and whole['windows_per_image'] == 1
    assert osp.isdir(osp.join(run_dir, 'eval-slide'))
    with open(osp.join(run_dir, 'eval-slide.log')) as f:
        assert 'Iter(test)' in f.read()
    with open(osp.join(work, 'results-slide.md')) as f:
        table = f.read()
    assert re.search(rf'^\| {METHODS[0]} \| [0-9.]+ \| 1 \|.*\| slide 64x128 stride 43x85 '
                     r'\| fp32 \|$', table, re.M), table
    with open(osp.join(work, 'provenance.json')) as f:
        stages = json.load(f)['stages']
    assert not [k for k in stages[f'{METHODS[0]}/seed0'] if 'test_cfg' in k]
    assert stages[f'{METHODS[0]}/seed0/eval']['test.model.test_cfg.mode'] == 'whole'
    assert stages[f'{METHODS[0]}/seed0/eval-slide']['test.model.test_cfg.mode'] == 'slide'

    slide_done = os.stat(osp.join(run_dir, 'done-slide.json')).st_mtime_ns
    tool.main(args + ['--test-mode', 'slide'])  # both evaluations done: nothing to do
    assert os.stat(osp.join(run_dir, 'done-slide.json')).st_mtime_ns == slide_done
    assert _checkpoints(run_dir) == {k: v for k, v in kept.items() if k.endswith('.pth')}


def test_training_change_refuses_and_test_time_change_re_evaluates(
        fake_suite, tiny_synthetic_root, tmp_path, capsys):
    """In any test mode a changed training setting still stops naming the training's stage;
    a changed test-time setting names only the evaluation's stage, and --overwrite
    re-evaluates it without retraining."""
    tool, calls = fake_suite
    work = str(tmp_path / 'suite')
    run_dir = osp.join(work, METHODS[0], 'seed0')
    tool.main(_fake_args(tiny_synthetic_root, work))
    tool.main(_fake_args(tiny_synthetic_root, work, '--test-mode', 'slide'))
    assert calls == [('train', run_dir), ('evaluate', run_dir), ('evaluate', run_dir)]
    kept = _checkpoints(run_dir)

    options = dict(tiny_synthetic_overrides(tiny_synthetic_root))
    options['optim_wrapper.optimizer.lr'] = 0.02
    err = _exit_2(tool, _fake_args(tiny_synthetic_root, work, '--test-mode', 'slide',
                                   options=options), capsys)
    assert len(err.strip().splitlines()) == 1
    assert f"stage '{METHODS[0]}/seed0' was made from other inputs " \
        '(optim_wrapper.optimizer.lr: 0.01 -> 0.02)' in err and '--overwrite' in err

    options = dict(tiny_synthetic_overrides(tiny_synthetic_root))
    options['model.test_cfg.stride'] = [32, 64]
    slide_args = _fake_args(tiny_synthetic_root, work, '--test-mode', 'slide', options=options)
    err = _exit_2(tool, slide_args, capsys)
    assert f"stage '{METHODS[0]}/seed0/eval-slide' was made from other inputs " \
        '(test.model.test_cfg.stride.0: 43 -> 32;' in err
    assert f"stage '{METHODS[0]}/seed0' " not in err  # the training is not in question
    tool.main(slide_args + ['--overwrite'])
    assert calls[3:] == [('evaluate', run_dir)] and _checkpoints(run_dir) == kept


def test_record_of_an_earlier_version_keeps_its_trainings(fake_suite, tiny_synthetic_root,
                                                         tmp_path, capsys):
    """A work dir whose record hashed the test-time settings with the training (as an earlier
    version wrote it): another test mode evaluates its trainings; its protocol evaluation
    (recorded without the test-time settings) is redone with --overwrite, not retrained."""
    tool, calls = fake_suite
    work = str(tmp_path / 'suite')
    run_dir = osp.join(work, METHODS[0], 'seed0')
    args = _fake_args(tiny_synthetic_root, work)
    tool.main(args)
    record = osp.join(work, 'provenance.json')
    with open(record) as f:
        data = json.load(f)
    cfg = tool.Config.fromfile(osp.join(run_dir, 'config.py'))
    stages = data['stages']
    stages[f'{METHODS[0]}/seed0'].update(tool.flatten_settings(tool.test_settings(cfg)))
    evaluation = stages[f'{METHODS[0]}/seed0/eval']
    for key in [k for k in evaluation if k.startswith('test.')]:
        del evaluation[key]
    with open(record, 'w') as f:
        json.dump(data, f)

    tool.main(_fake_args(tiny_synthetic_root, work, '--test-mode', 'slide'))
    assert calls == [('train', run_dir), ('evaluate', run_dir), ('evaluate', run_dir)]
    err = _exit_2(tool, args, capsys)
    assert f"stage '{METHODS[0]}/seed0/eval' was made from other inputs" in err
    assert f"stage '{METHODS[0]}/seed0' " not in err
    tool.main(args + ['--overwrite'])
    assert calls[3:] == [('evaluate', run_dir)]
