# Copyright (c) mmaffseg contributors. All rights reserved.
"""DSRL's cost: training and inference against the same network at full and at half input.

    python tools/analysis_tools/benchmark.py dsrl [CONFIG] [--size H W] [--batch-size 2]
        [--warmup 1] [--repeat 3] [--threads 1] [--device cpu|cuda] [--cfg-options ...]

CONFIG is a DSRLEncoderDecoder config (default: the DSRL quick-start). ``--size`` is the
ORIGINAL image size; DSRL's network sees ``downsample_factor`` times it. Random weights and
random images; every case runs in its own subprocess (:func:`benchmarks.profiling.run_case`)
so that the peak memory (:func:`benchmarks.profiling.measure`; CPU: peak RSS of that process;
CUDA: peak allocated) belongs to that case alone. On CPU the time reported is the
process CPU time (all threads), which stays meaningful on a shared, oversubscribed machine where
wall time does not; wall time is printed too. Use ``--threads 1`` for the most stable numbers.
Cases:

    train dsrl   DSRL train step on HxW images (network input H/2 x W/2, SSSR + SISR + FA)
    train full   the same backbone + heads as a plain EncoderDecoder trained on HxW images
    train half   that baseline trained on H/2 x W/2 images (what DSRL's network sees)
    infer dsrl   DSRL test step on one HxW image (training branches dropped)
    infer full   baseline test step on one HxW image
    infer half   baseline test step on one H/2 x W/2 image, prediction resized to HxW
"""
import argparse
import inspect

import torch
from mmengine.config import ConfigDict
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.cli import CfgOptionsAction, config_errors_exit, load_config, positive_int

from .cli import command
from .profiling import emit_result, measure, ratio_table, run_case
from .random_batch import random_seg_batch

DEFAULT_CONFIG = 'configs/dsrl/dsrl-deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py'
CASES = ('train-dsrl', 'train-full', 'train-half', 'infer-dsrl', 'infer-full', 'infer-half')
SHARED = dict(size=[256, 512], warmup=1, repeat=3, threads=1, device='cpu')
SHARED_HELP = dict(size="original image H W (DSRL's network sees downsample_factor times it)")


def baseline_model_cfg(cfg: dict) -> dict:
    """The plain ``EncoderDecoder`` config with the same backbone, neck and heads as a DSRL one.

    Drops every DSRL-only key (``sr_decoder``, ``loss_fa``, ``downsample_factor``...), so that
    the baseline is trained and tested on whatever resolution its data pipeline gives it.

    Args:
        cfg (dict): A ``DSRLEncoderDecoder`` model config.

    Returns:
        dict: A new ``EncoderDecoder`` config (nested values are shared, not copied).
    """
    accepted = inspect.signature(EncoderDecoder.__init__).parameters
    out = {k: v for k, v in cfg.items() if k in accepted}
    out['type'] = 'EncoderDecoder'
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument('--batch-size', type=positive_int, default=2, help='training batch size')
    parser.add_argument('--case', choices=CASES, help=argparse.SUPPRESS)  # worker mode
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)


def measure_case(args: argparse.Namespace) -> dict:
    """Build the model of ``args.case`` and measure it; returns seconds and MiB."""
    torch.manual_seed(0)
    init_default_scope('mmseg')
    with config_errors_exit():  # e.g. a misspelt --cfg-options key
        cfg = load_config(args.config, args.cfg_options)
    stage, kind = args.case.split('-')
    model_cfg = cfg.model.to_dict()
    model_cfg['pretrained'] = None
    full = tuple(args.size)
    half = tuple(max(1, int(s * model_cfg.get('downsample_factor', 0.5) + 0.5)) for s in full)
    size = half if kind == 'half' else full
    if kind != 'dsrl':
        model_cfg = baseline_model_cfg(model_cfg)
    model_cfg['data_preprocessor']['size'] = size
    model = revert_sync_batchnorm(MODELS.build(ConfigDict(model_cfg))).to(args.device)
    cuda = torch.device(args.device).type == 'cuda'
    if stage == 'train':
        model.train()
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9))
        data = random_seg_batch(model.num_classes, size, args.batch_size, device=args.device)

        def step():
            return model.train_step(data, optim)
    else:
        if kind == 'dsrl':
            model.drop_training_branches()
        model.eval()
        data = random_seg_batch(model.num_classes, size, 1, ori_size=full, device=args.device)

        def step():
            with torch.no_grad():
                return model.test_step(data)

    result = measure(step, args.warmup, args.repeat, device=args.device)
    result.update(case=args.case, size=list(size),
                  seconds=result['wall_s'] if cuda else result['cpu_s'],
                  params_m=sum(p.numel() for p in model.parameters()) / 1e6)
    result['step_mb'] = result['work_mb']
    return result


def run(args: argparse.Namespace) -> int:
    if args.case:  # worker: one case, result as the last stdout line
        emit_result(measure_case(args))
        return 0
    results = {}
    for case in CASES:
        cmd = command('dsrl', args.config, '--case', case, '--size', *args.size, '--batch-size',
                      args.batch_size, '--warmup', args.warmup, '--repeat', args.repeat,
                      '--threads', args.threads, '--device', args.device)
        if args.cfg_options:
            cmd += ['--cfg-options'] + [f'{k}={v}' for k, v in args.cfg_options.items()]
        results[case] = run_case(cmd)
        r = results[case]
        print(f'{case:11s} input {r["size"][0]}x{r["size"][1]}  {r["seconds"] * 1e3:9.1f} ms '
              f'(wall {r["wall_s"] * 1e3:9.1f} ms)  '
              f'peak {r["peak_mb"]:8.1f} MiB  (+{r["step_mb"]:7.1f} MiB over the built model)  '
              f'params {r["params_m"]:.2f} M', flush=True)

    h, w = args.size
    print(f'\nDSRL config {args.config}; original {h}x{w}, training batch {args.batch_size}, '
          f'{args.device}, {args.threads} threads, median of {args.repeat}; time = '
          f'{"wall" if args.device.startswith("cuda") else "process CPU"} time')
    print(ratio_table(results, [('train-dsrl', 'train-full'), ('train-dsrl', 'train-half'),
                                ('infer-dsrl', 'infer-full'), ('infer-dsrl', 'infer-half')],
                      {'time': 'seconds', 'memory': 'step_mb'}))
    print('(memory: peak above the built model, i.e. activations, gradients and optimizer state)')
    return 0
