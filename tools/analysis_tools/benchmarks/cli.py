# Copyright (c) mmaffseg contributors. All rights reserved.
"""The benchmark command line: a subcommand per target, shared options, one error style.

    python tools/analysis_tools/benchmark.py CONFIG [CHECKPOINT] [--num-images 50] ...
    python tools/analysis_tools/benchmark.py TARGET [shared options] [its options]

The first form is mmseg's inference speed test, with mmseg's arguments (its subcommand,
``speed``, may be left out). Each other target is a module of this package (:data:`TARGETS`)
that defines

* ``SHARED``: the shared options it takes (keys of :data:`SHARED_OPTIONS`) with its defaults,
  and ``SHARED_HELP`` where one of them means something particular to it;
* ``add_arguments(parser)``: its own options;
* ``run(args) -> int``: the measurement, returning the exit status.

:func:`main` checks the shared options and sets ``--threads`` (``torch.set_num_threads``)
before the target runs. Bad input is reported as one line ``benchmark.py: error: ...`` with exit
status 2 (:func:`~mmaffseg.cli.errors.report_error`), by the targets too; a case that failed
in its own process (:class:`~.profiling.CaseError`) is reported the same way.
"""
import argparse
import difflib
import importlib
import os.path as osp
import sys
from types import ModuleType
from typing import Dict, Iterable, List, Optional, Sequence

import torch

from mmaffseg.cli.errors import report_error
from mmaffseg.utils.config_errors import ConfigFileError

from .profiling import CaseError

#: Subcommand -> the module of this package that measures it.
TARGETS: Dict[str, str] = {
    'speed': 'speed',
    'random-walk': 'random_walk',
    'cp-loss': 'cp_loss',
    'dense-crf': 'dense_crf',
    'dsrl': 'dsrl',
    'context-modules': 'context_modules',
    'instance-embedding': 'instance_embedding',
    'wsss-pipeline': 'wsss_pipeline',
    'host-syncs': 'host_syncs',
    'train-step': 'train_step',
}

#: The options the targets share (argparse keywords); each target gives the defaults.
SHARED_OPTIONS: Dict[str, dict] = {
    'threads': dict(type=int, metavar='N', help='torch CPU threads'),
    'device': dict(help="where the work runs: 'cpu', 'cuda' or 'cuda:N'"),
    'size': dict(type=int, nargs=2, metavar=('H', 'W'), help='input image size'),
    'repeat': dict(type=int, metavar='N', help='timed calls (the median is reported)'),
    'warmup': dict(type=int, metavar='N', help='untimed calls before the timed ones'),
    'out': dict(metavar='FILE', help='also write the results as JSON'),
}

#: The command line itself, which runs the cases that need a fresh process.
SCRIPT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'benchmark.py')


def command(target: str, *args) -> List[str]:
    """``[benchmark.py, target, *args]``: a case of ``target`` run in a fresh process (for
    :func:`~.profiling.run_case`)."""
    return [SCRIPT, target, *map(str, args)]


def load_target(name: str) -> ModuleType:
    """The module that measures the target ``name`` (a key of :data:`TARGETS`)."""
    return importlib.import_module(f'{__package__}.{TARGETS[name]}')


def options(args: argparse.Namespace) -> dict:
    """The parsed options of a target as a plain dict (for a JSON report)."""
    return {k: v for k, v in vars(args).items() if k != 'run'}


def _add_target(subparsers, name: str) -> None:
    module = load_target(name)
    summary = module.__doc__.strip().splitlines()[0]
    parser = subparsers.add_parser(name, help=summary, description=module.__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    for option, default in module.SHARED.items():
        kwargs = dict(SHARED_OPTIONS[option], default=default)
        kwargs['help'] = getattr(module, 'SHARED_HELP', {}).get(option, kwargs['help'])
        if default is not None:
            kwargs['help'] += ' (default: %(default)s)'
        parser.add_argument(f'--{option}', **kwargs)
    module.add_arguments(parser)
    parser.set_defaults(run=module.run)


def build_parser(targets: Optional[Iterable[str]] = None) -> argparse.ArgumentParser:
    """The parser of ``benchmark.py`` with the subcommands of ``targets`` (default: all)."""
    parser = argparse.ArgumentParser(
        description='Benchmarks: mmseg\'s inference speed test (benchmark.py CONFIG '
        '[CHECKPOINT] ...) and one subcommand per mmaffseg target (benchmark.py TARGET ...).',
        epilog='"benchmark.py TARGET --help" describes a target and its options.')
    subparsers = parser.add_subparsers(title='targets', metavar='TARGET')
    for name in targets or TARGETS:
        _add_target(subparsers, name)
    return parser


def check_shared_options(args: argparse.Namespace) -> Optional[str]:
    """The error message for the first shared option that cannot work; None if all can."""
    for option, least in (('threads', 1), ('repeat', 1), ('warmup', 0)):
        value = getattr(args, option, None)
        if value is not None and value < least:
            return f'--{option}: expected an integer >= {least}, got {value}'
    size = getattr(args, 'size', None)
    if size is not None and min(size) < 1:
        return f'--size: expected a positive height and width, got {" ".join(map(str, size))}'
    device = getattr(args, 'device', None)
    if device is not None:
        try:
            kind = torch.device(device).type
        except RuntimeError:
            return f"--device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        if kind == 'cuda' and not torch.cuda.is_available():
            return f'--device {device}: CUDA is not available on this machine; use --device cpu'
    return None


def report_case_error(error: CaseError) -> int:
    """Report a case that failed in its own process; returns the exit status.

    A case that rejected its input (status 2) printed one ``...: error: ...`` line, which is
    repeated as this command's; any other failure is reported with the case's command and the
    end of its stderr, and its status is returned.
    """
    lines = error.stderr.strip().splitlines()
    if error.returncode == 2 and lines and ': error: ' in lines[-1]:
        return report_error(lines[-1].split(': error: ', 1)[1])
    report_error(str(error))
    return error.returncode or 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``benchmark.py`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = argv[0] if argv else ''
    if first and first not in TARGETS and first not in ('-h', '--help'):
        if not first.startswith('-') and not first.endswith('.py') and not osp.exists(first):
            close = difflib.get_close_matches(first, TARGETS, n=1)
            hint = f'; did you mean {close[0]}?' if close else ''
            return report_error(f'{first!r} is neither a TARGET ({", ".join(TARGETS)}) nor a '
                                f'CONFIG file{hint}')
        argv.insert(0, 'speed')  # mmseg's form: benchmark.py [options] CONFIG [CHECKPOINT] ...
    parser = build_parser([argv[0]] if argv and argv[0] in TARGETS else None)
    args = parser.parse_args(argv)
    if not hasattr(args, 'run'):
        parser.print_usage(sys.stderr)
        return report_error(f'name a CONFIG (the speed test) or a TARGET: {", ".join(TARGETS)}')
    message = check_shared_options(args)
    if message:
        return report_error(message)
    threads = torch.get_num_threads()
    try:
        if getattr(args, 'threads', None):
            torch.set_num_threads(args.threads)
        return args.run(args) or 0
    except CaseError as error:
        return report_case_error(error)
    except ConfigFileError as error:  # a missing or unreadable config of a target
        return report_error(str(error))
    finally:
        torch.set_num_threads(threads)
