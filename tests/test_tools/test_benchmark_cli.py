# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/analysis_tools/benchmark.py: one command line for every benchmark target, the shared
options defined once, one error style, and every command the documentation shows parses."""
import glob
import os.path as osp
import re
import shlex

import pytest
from benchmarks import cli
from benchmarks.profiling import CaseError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _parse(argv):
    return cli.build_parser([argv[0]]).parse_args(argv)


def test_no_target_defines_a_shared_option_itself():
    """``--threads``, ``--device``, ... come from the one table in cli; a target only sets its
    defaults, so they are spelt and checked alike everywhere."""
    import argparse
    for name in cli.TARGETS:
        module = cli.load_target(name)
        assert set(module.SHARED) <= set(cli.SHARED_OPTIONS), name
        own = argparse.ArgumentParser()
        module.add_arguments(own)
        flags = {flag for action in own._actions for flag in action.option_strings}
        assert not flags & {f'--{o}' for o in cli.SHARED_OPTIONS}, name


@pytest.mark.parametrize('argv, expected', [
    (['random-walk'], dict(threads=1, repeat=3, device='cpu', channels=21)),
    (['cp-loss'], dict(threads=1, repeat=3, out=None, prior_sizes=[64, 96, 128])),
    (['dense-crf'], dict(size=[375, 500], labels=[3, 21], workers=['auto'])),
    (['dsrl'], dict(size=[256, 512], warmup=1, repeat=3, threads=1, device='cpu')),
    (['context-modules'], dict(size=[512, 1024], threads=2, warmup=1, repeat=2, device='cpu')),
    (['instance-embedding'], dict(size=[512, 1024], threads=2, warmup=1, repeat=5)),
    (['wsss-pipeline', 'a.py', 'b.py'], dict(size=[375, 500], threads=1, images=2)),
    (['host-syncs'], dict(threads=1, device='cpu', steps=20)),
    (['speed', 'x.py', 'y.pth'], dict(warmup=5, num_images=50, repeat_times=1)),
])
def test_each_target_keeps_its_defaults(argv, expected):
    args = vars(_parse(argv))
    assert {k: args[k] for k in expected} == expected
    unused = set(cli.SHARED_OPTIONS) - set(cli.load_target(argv[0]).SHARED)
    assert not unused & set(args), 'a target takes only the shared options it uses'


@pytest.mark.parametrize('argv', [['no_such_config.py', '--num-images', '2'],
                                  ['--num-images', '2', 'no_such_config.py']])
def test_mmseg_form_runs_the_speed_test(capsys, argv):
    """``benchmark.py CONFIG [CHECKPOINT]``, as mmseg's, is the speed test."""
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        'error: CONFIG: config file no_such_config.py does not exist'), err


@pytest.mark.parametrize('argv, message', [
    (['random-walk', '--repeat', '0'], '--repeat: expected an integer >= 1, got 0'),
    (['dsrl', '--warmup', '-1'], '--warmup: expected an integer >= 0, got -1'),
    (['context-modules', '--threads', '0'], '--threads: expected an integer >= 1, got 0'),
    (['dense-crf', '--size', '0', '8'], '--size: expected a positive height and width, got 0 8'),
    (['host-syncs', '--device', 'gpu'], "--device: expected 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (['random-walk', '--channels', '3'], '--channels: the synthetic scene has 3 objects'),
    (['dense-crf', '--workers', '1'], '--workers: a pool has at least 2 workers'),
    ([], 'name a CONFIG (the speed test) or a TARGET'),
    (['random_walk'], "'random_walk' is neither a TARGET (speed, random-walk,"),
])
def test_bad_input_is_one_line_and_status_2(capsys, argv, message):
    assert cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines()
           if not line.startswith('usage:')]
    assert len(err) == 1 and f'error: {message}' in err[0], err


def test_failed_case_is_reported_in_the_same_style(capsys):
    """A case that rejected its input repeats its one line with status 2; a crashed case
    reports its command and stderr with its own status."""
    rejected = CaseError('benchmark case failed with exit code 2: benchmark.py dsrl ...', 2,
                         'a warning\nbenchmark.py: error: CONFIG: x.py does not exist\n')
    assert cli.report_case_error(rejected) == 2
    assert capsys.readouterr().err.strip().endswith('error: CONFIG: x.py does not exist')
    crashed = CaseError('benchmark case failed with exit code 1: benchmark.py dsrl ...', 1,
                        'Traceback ...\nValueError: boom\n')
    assert cli.report_case_error(crashed) == 1
    assert 'error: benchmark case failed with exit code 1' in capsys.readouterr().err


def _documented_commands():
    """Every ``python tools/analysis_tools/benchmark.py ...`` command of the documentation."""
    files = [osp.join(REPO, 'README.md'), osp.join(REPO, 'tools', 'analysis_tools', 'gpu_check.sh')]
    for pattern in ('docs/*.md', 'configs/**/*.md', 'projects/**/*.md'):
        files += glob.glob(osp.join(REPO, pattern), recursive=True)
    for path in sorted(files):
        with open(path, encoding='utf-8') as f:
            text = re.sub(r'\\\n\s*', ' ', f.read())  # shell line continuations
        for match in re.finditer(r'python tools/analysis_tools/benchmark\.py([^`|\n]*)', text):
            yield osp.relpath(path, REPO), match.group(1).strip()


DOCUMENTED = list(_documented_commands())


def test_the_docs_show_benchmark_commands():
    assert len(DOCUMENTED) >= 15
    assert {argv.split()[0] for _, argv in DOCUMENTED if argv} >= set(cli.TARGETS) - {'speed'}


@pytest.mark.parametrize('where, command', DOCUMENTED)
def test_documented_command_parses(where, command):
    argv = shlex.split(command)
    if argv[0] not in cli.TARGETS:
        argv.insert(0, 'speed')  # as cli.main does with mmseg's form
    args = _parse(argv)
    assert hasattr(args, 'run'), (where, command)
