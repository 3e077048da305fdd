# Copyright (c) mmaffseg contributors. All rights reserved.
"""The context modules against their mmseg baselines: params, FLOPs, latency, peak memory.

    python tools/analysis_tools/benchmark.py context-modules [--size 512 1024] [--threads 2]
        [--warmup 1] [--repeat 2] [--device cpu|cuda] [--models hanet spnet ...] [--out F.json]

Every model is the repository's (or mmseg's) Cityscapes R-50-D8 config at ``--size`` input,
batch 1 for inference and ``--train-batch`` (default 2, the configs' per-GPU batch) for
training, random weights, without the auxiliary head (it is the same FCN head for all of them, so
dropping it compares the decode heads). Each measurement runs in its own subprocess
(:func:`benchmarks.profiling.run_case`) so that a peak memory belongs to that case alone:

* ``infer``: ``model(inputs, mode='tensor')`` under ``no_grad`` (backbone + decode head, no
  resize, as mmseg's ``get_flops.py`` counts it), its FLOPs (multiply-adds) and parameters;
* ``train``: ``model.loss`` on a random label map + ``backward`` (CPNet's affinity loss
  included, as in its training).

Times are medians of ``--repeat`` calls; on CPU both wall and process CPU time are printed (CPU
time is the stable one on a shared machine). Memory is measured by
:func:`benchmarks.profiling.measure`: the peak RSS of the process on CPU (what ``top`` shows,
including the built model and the Python runtime) and the increase over the built model
("+work"); on CUDA the peak allocated memory and its increase over the built model. The table
ends with each module's ratios to its baseline(s), all measured in this one run.
"""
import argparse
import json
from typing import Dict, List

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.cli import load_config, positive_int

from .cli import command, options
from .profiling import emit_result, measure, ratio_table, run_case
from .random_batch import random_seg_batch

# name -> (config, baselines it is compared with)
MODELS_TO_RUN: Dict[str, tuple] = {
    'deeplabv3plus':
    ('mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py', ()),
    'hanet': ('configs/hanet/hanet_r50-d8_4xb2-80k_cityscapes-512x1024.py', ('deeplabv3plus', )),
    'deeplabv3plus-hanet-neck':
    ('configs/hanet/deeplabv3plus-hanet-neck_r50-d8_4xb2-80k_cityscapes-512x1024.py',
     ('deeplabv3plus', )),
    'fcn': ('mmseg::fcn/fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py', ()),
    'pspnet': ('mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py', ()),
    'spnet': ('configs/spnet/spnet_r50-d8_4xb2-80k_cityscapes-512x1024.py', ('fcn', 'pspnet')),
    'cpnet': ('configs/cpnet/cpnet_r50-d8_4xb2-80k_cityscapes-512x1024.py', ('fcn', 'pspnet')),
}


SHARED = dict(size=[512, 1024], threads=2, warmup=1, repeat=2, device='cpu', out=None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--train-batch', type=positive_int, default=2, help='training batch size')
    parser.add_argument('--models', nargs='+', choices=list(MODELS_TO_RUN),
                        default=list(MODELS_TO_RUN),
                        help='subset to run (baselines of a chosen module are added)')
    parser.add_argument('--case', help=argparse.SUPPRESS)  # worker mode: "<model>:<infer|train>"


def build_model(name: str, size: List[int], device: str) -> torch.nn.Module:
    """The config's segmentor with random weights, BN, no auxiliary head, input ``size``."""
    cfg = load_config(MODELS_TO_RUN[name][0])
    model_cfg = cfg.model
    model_cfg.pretrained = None
    model_cfg.backbone.init_cfg = None
    model_cfg.auxiliary_head = None
    model_cfg.data_preprocessor.size = tuple(size)
    if 'prior_size' in model_cfg.decode_head:  # CPNet: one prior cell per stride-8 feature
        model_cfg.decode_head.prior_size = (size[0] // 8, size[1] // 8)
    return revert_sync_batchnorm(MODELS.build(model_cfg)).to(device)


def measure_case(args: argparse.Namespace) -> dict:
    """Measure one ``<model>:<infer|train>`` case in this process."""
    torch.manual_seed(0)
    init_default_scope('mmseg')
    name, stage = args.case.split(':')
    model = build_model(name, args.size, args.device)
    data = model.data_preprocessor(
        random_seg_batch(model.decode_head.num_classes, args.size,
                         n=args.train_batch if stage == 'train' else 1, device=args.device),
        training=stage == 'train')
    inputs, samples = data['inputs'], data['data_samples']
    if stage == 'train':
        model.train()

        def step():
            model.zero_grad(set_to_none=True)
            losses = model.loss(inputs, samples)
            sum(v for k, v in losses.items() if 'loss' in k).backward()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(inputs, mode='tensor')

    result = measure(step, args.warmup, args.repeat, device=args.device)
    if stage == 'infer':
        with torch.no_grad():
            info = get_model_complexity_info(model, inputs=(inputs, ), show_table=False,
                                             show_arch=False)
        result.update(gflops=info['flops'] / 1e9,
                      params_m=sum(p.numel() for p in model.parameters()) / 1e6)
    return result


def run_in_subprocess(args: argparse.Namespace, case: str) -> dict:
    return run_case(command('context-modules', '--case', case, '--size', *args.size,
                            '--threads', args.threads, '--train-batch', args.train_batch,
                            '--warmup', args.warmup, '--repeat', args.repeat, '--device',
                            args.device))


def run(args: argparse.Namespace) -> int:
    if args.case:  # worker: one case, result as the last stdout line
        emit_result(measure_case(args))
        return 0
    names = []
    for name in args.models:
        for n in (*MODELS_TO_RUN[name][1], name):
            if n not in names:
                names.append(n)
    time_kind = 'wall' if args.device.startswith('cuda') else 'wall / CPU'
    print(f'input {args.size[0]}x{args.size[1]}, batch 1 (train {args.train_batch}), '
          f'{args.device}, {args.threads} thread(s), '
          f'median of {args.repeat} after {args.warmup} warm-up; time = {time_kind} seconds\n')
    header = (f'| model | params (M) | GFLOPs | forward (s) | forward+backward (s) | '
              f'peak infer (MiB) | peak train (MiB) |\n|{"---|" * 7}')
    print(header, flush=True)
    results = {}
    for name in names:
        infer = run_in_subprocess(args, f'{name}:infer')
        train = run_in_subprocess(args, f'{name}:train')
        results[name] = dict(infer=infer, train=train)

        def t(r):
            return f'{r["wall_s"]:.2f}' + ('' if args.device.startswith('cuda') else
                                           f' / {r["cpu_s"]:.2f}')

        print(f'| {name} | {infer["params_m"]:.2f} | {infer["gflops"]:.1f} | {t(infer)} | '
              f'{t(train)} | {infer["peak_mb"]:.0f} (+{infer["work_mb"]:.0f}) | '
              f'{train["peak_mb"]:.0f} (+{train["work_mb"]:.0f}) |', flush=True)

    print('\nratios to the baseline (module / baseline), same run:\n')
    key = 'wall_s' if args.device.startswith('cuda') else 'cpu_s'
    print(ratio_table(results, [(name, base) for name in names for base in MODELS_TO_RUN[name][1]],
                      {'params': 'infer.params_m', 'FLOPs': 'infer.gflops',
                       'forward': f'infer.{key}', 'forward+backward': f'train.{key}',
                       'peak infer': 'infer.peak_mb', 'peak train': 'train.peak_mb'}))
    if not args.device.startswith('cuda'):
        print('\n(time ratios use process CPU time; memory ratios use peak RSS)')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=options(args), results=results), f, indent=1)
    return 0
