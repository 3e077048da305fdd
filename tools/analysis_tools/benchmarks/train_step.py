# Copyright (c) mmaffseg contributors. All rights reserved.
"""Training step of every method of a benchmark suite in float32, with ``--amp`` and with
``--channels-last``: time, peak memory and the speed-up over float32, in one run.

    python tools/analysis_tools/benchmark.py train-step [--suite cityscapes] [--methods M ...]
        [--configs CONFIG ...] [--modes fp32 amp amp+cl] [--batch 2] [--device cpu|cuda]
        [--threads 1] [--warmup 2] [--repeat 5] [--out F.json]

Each method is the exact config ``tools/benchmark_suite.py SUITE`` trains (seed 0; the CRF
variants train nothing and are left out), or each of ``--configs`` as it is (e.g. the
quick-start configs); its model is built with random weights (SyncBN as BN: one process), and
one training step is mmengine's ``model.train_step`` on a random batch of ``--batch`` images of
the config's crop size and their labels: data preprocessor, forward, losses, backward,
optimizer step, through the optimizer wrapper the ``--amp`` / ``--channels-last`` options make:

* ``fp32``: the config as it is;
* ``amp``: ``--amp`` (:func:`mmaffseg.cli.use_amp`: bfloat16 autocast on CPU and on GPUs that
  support it, else float16 with dynamic loss scaling);
* ``cl``, ``amp+cl``: the same with ``--channels-last`` (model and batch in channels-last).

Every method runs in its own process (:func:`benchmarks.profiling.run_case`), its modes one
after the other on the same weights and batch; times are the median of ``--repeat`` steps
after ``--warmup`` (wall and process CPU time; on a GPU wall time, synchronised), memory the
peak of :func:`benchmarks.profiling.measure` (CUDA: peak allocated; CPU: peak RSS). The table
gives each mode's speed-up over ``fp32`` of the same method (time of fp32 / time of the mode),
both measured in this run; on CPU the speed-up uses CPU time.
"""
import argparse
import copy
import importlib.util
import json
import os
import os.path as osp
from types import ModuleType, SimpleNamespace

import torch

from mmaffseg.cli.errors import positive_int, report_error

from .cli import command, options
from .profiling import emit_result, format_table, measure, run_case
from .random_batch import random_seg_batch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
MODES = ('fp32', 'amp', 'cl', 'amp+cl')
SHARED = dict(threads=1, device='cpu', warmup=2, repeat=5, out=None)


def suite_tool() -> ModuleType:
    """``tools/benchmark_suite.py`` as a module (its suites and their method configs)."""
    path = osp.join(REPO, 'tools', 'benchmark_suite.py')
    spec = importlib.util.spec_from_file_location('benchmark_suite', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trained_methods(suite) -> list:
    return [m for m in suite.methods if m not in suite.get('eval_only', {})]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--suite', default='cityscapes',
                        help='a suite of configs/benchmark/suites or a suite file '
                        '(default: %(default)s)')
    parser.add_argument('--methods', nargs='+', help="a subset of the suite's trained methods")
    parser.add_argument('--configs', nargs='+', help='configs to time instead of a suite\'s '
                        'methods (named by their file names)')
    parser.add_argument('--modes', nargs='+', choices=MODES, default=['fp32', 'amp', 'amp+cl'])
    parser.add_argument('--batch', type=positive_int, default=2,
                        help='images per step (default: 2, the '
                        "protocol's per-GPU batch)")
    parser.add_argument('--case', help=argparse.SUPPRESS)  # worker mode: the method


def measure_mode(cfg, mode: str, args: argparse.Namespace) -> dict:
    """Steps of one method's config ``cfg`` in ``mode`` (one of :data:`MODES`)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS

    from mmaffseg.cli import use_amp, use_channels_last
    from mmaffseg.engine import ChannelsLastHook
    device = torch.device(args.device)
    cfg = copy.deepcopy(cfg)
    dtype = use_amp(cfg, 'auto', device.type) if 'amp' in mode else 'float32'
    if 'cl' in mode:
        use_channels_last(cfg)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).to(device).train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    if 'cl' in mode:
        ChannelsLastHook().before_run(SimpleNamespace(model=model))
    batch = random_seg_batch(model.decode_head.num_classes, tuple(cfg.crop_size), n=args.batch,
                             device=args.device)
    losses = {}

    def step():
        losses.update(model.train_step(batch, optim_wrapper))

    result = measure(step, args.warmup, args.repeat, device=device)
    result.update(loss=float(sum(v for k, v in losses.items() if 'loss' in k)), dtype=dtype)
    return result


def measure_method(args: argparse.Namespace) -> dict:
    """Worker: every mode of one method, in this process."""
    from mmengine.registry import init_default_scope

    from mmaffseg.cli import load_config
    if args.case.endswith('.py'):
        cfg = load_config(args.case)
    else:
        tool = suite_tool()
        suite, path = tool.load_suite(args.suite)
        cfg = tool.method_config(suite, path, args.case, 0, 'unused')
    cfg.model.pop('pretrained', None)
    cfg.model.backbone.pop('init_cfg', None)
    init_default_scope('mmseg')
    return {mode: measure_mode(cfg, mode, args) for mode in args.modes}


def run(args: argparse.Namespace) -> int:
    if args.case:  # worker: one method, its modes as the last stdout line
        emit_result(measure_method(args))
        return 0
    if args.configs:
        missing = [c for c in args.configs if not osp.isfile(c)]
        if missing or args.methods:
            return report_error(f'--configs: no such file {missing[0]}' if missing else
                                '--configs replaces a suite\'s --methods: give one of them')
        methods, what = [osp.abspath(c) for c in args.configs], 'configs'
    else:
        tool = suite_tool()
        try:
            suite, _ = tool.load_suite(args.suite)
        except tool.SuiteError as e:  # an unknown suite, a broken suite file
            return report_error(str(e))
        methods = args.methods or trained_methods(suite)
        unknown = [m for m in methods if m not in trained_methods(suite)]
        if unknown:
            return report_error(f'--methods: {unknown} are not trained methods of suite '
                                f'{args.suite} ({trained_methods(suite)})')
        what = f'suite {args.suite}'
    cuda = torch.device(args.device).type == 'cuda'
    print(f'{what}, batch {args.batch} at the crop size, {args.device}'
          f'{" (" + torch.cuda.get_device_name(args.device) + ")" if cuda else ""}, '
          f'{args.threads} thread(s), median of {args.repeat} steps after {args.warmup}; '
          f'load average before {os.getloadavg()[0]:.2f}\n')
    key = 'wall_s' if cuda else 'cpu_s'
    header = ['method', 'mode', 'autocast', 'step wall (s)', 'step CPU (s)', 'peak (MiB)',
              'work (MiB)', 'speed-up', 'loss']
    print(format_table(header, []), flush=True)
    results = {}
    for method in methods:
        results[method] = r = run_case(command(
            'train-step', '--case', method, '--suite', args.suite, '--modes', *args.modes,
            '--batch', args.batch, '--device', args.device, '--threads', args.threads,
            '--warmup', args.warmup, '--repeat', args.repeat))
        for mode in args.modes:
            m = r[mode]
            speedup = r['fp32'][key] / m[key] if 'fp32' in r and m[key] else None
            row = [osp.basename(method), mode, m['dtype'], m['wall_s'], m['cpu_s'],
                   round(m['peak_mb']), round(m['work_mb']),
                   '—' if speedup is None else f'{speedup:.2f}x', f'{m["loss"]:.4f}']
            print(format_table(header, [row]).splitlines()[-1], flush=True)
    print(f'\nspeed-up: {"wall" if cuda else "CPU"} time of fp32 / of the mode, same method, '
          f'this run; load average after {" ".join(f"{x:.2f}" for x in os.getloadavg())}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=options(args), results=results), f, indent=1)
    return 0
