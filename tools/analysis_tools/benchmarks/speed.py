# Copyright (c) mmaffseg contributors. All rights reserved.
"""Inference speed (images/s) of a config, as mmseg's tools/analysis_tools/benchmark.py.

    python tools/analysis_tools/benchmark.py CONFIG [CHECKPOINT] [--num-images 50]
        [--warmup 5] [--repeat-times 1] [--device cpu|cuda] [--cfg-options ...]

(``benchmark.py speed CONFIG ...`` is the same command.) Images come from the config's test
dataloader (the synthetic dataset generates itself). Each ``test_step`` is timed by
:func:`benchmarks.profiling.measure` (wall and process CPU time); the peak memory of a run
(CPU: peak RSS; CUDA: peak allocated) is printed with its fps.
"""
import argparse
from functools import partial

import torch
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.cli import (
    CfgOptionsAction,
    checkpoint_errors_exit,
    config_errors_exit,
    load_config,
    positive_int,
    registry_error_hints,
    report_error,
)
from mmaffseg.utils import load_model_weights

from .profiling import measure, read_peak_memory, reset_peak_memory

SHARED = dict(warmup=5, device='cuda' if torch.cuda.is_available() else 'cpu')
SHARED_HELP = dict(warmup='untimed images first')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='optional; random weights otherwise')
    parser.add_argument('--num-images', type=positive_int, default=50)
    parser.add_argument('--repeat-times', type=positive_int, default=1)
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)


def run(args: argparse.Namespace) -> int:
    with config_errors_exit():  # e.g. a misspelt --cfg-options key
        cfg = load_config(args.config, args.cfg_options)
    # as mmseg's tools: types of the config resolve in mmseg's (or the config's) scope
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.test_dataloader.batch_size = 1
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    with config_errors_exit(), registry_error_hints():
        loader = Runner.build_dataloader(cfg.test_dataloader)
        model = MODELS.build(cfg.model).to(args.device).eval()
    if args.checkpoint:
        with checkpoint_errors_exit({args.checkpoint: 'CHECKPOINT'}):
            load_model_weights(model, args.checkpoint)
    fps_runs = []
    for run in range(args.repeat_times):
        seen, done, elapsed, cpu = 0, 0, 0.0, 0.0
        _, peak_source = reset_peak_memory(args.device)
        for data in loader:
            seen += 1
            with torch.no_grad():
                step = measure(partial(model.test_step, data), warmup=0, repeat=1,
                               device=args.device, memory=False)
            if seen > args.warmup:
                elapsed += step['wall_s']
                cpu += step['cpu_s']
                done += 1
                if done % 10 == 0:
                    print(f'run {run + 1}: {done}/{args.num_images} images, '
                          f'{done / elapsed:.2f} img/s')
            if done >= args.num_images:
                break
        if done == 0:
            return report_error(f'--warmup {args.warmup}: the test set has {seen} image(s), '
                                'none left to time after the warm-up; lower --warmup')
        fps_runs.append(done / elapsed)
        print(f'run {run + 1}: overall fps {fps_runs[-1]:.2f} img/s ({done} images, '
              f'{args.device}); {cpu / done:.3f} s process CPU time per image; peak memory '
              f'{read_peak_memory(peak_source, args.device):.0f} MiB')
    if len(fps_runs) > 1:
        print(f'average fps over {len(fps_runs)} runs: {sum(fps_runs) / len(fps_runs):.2f}')
    return 0
