# Copyright (c) mmaffseg contributors. All rights reserved.
"""Inference time per image of an InstanceEmbeddingSegmentor, network vs seed post-processing.

    python tools/analysis_tools/benchmark.py instance-embedding [CONFIG] [CHECKPOINT]
        [--size 512 1024] [--threads 2] [--warmup 1] [--repeat 5] [--device cpu|cuda]
        [--cfg-options ...]

One random HxW image (random weights unless CHECKPOINT is given). ``network`` is the backbone
and both heads; ``predict`` adds seed selection, mask growing and resizing the masks to the
image, i.e. everything ``model.predict`` does. With random weights the seeds are as many as
``test_cfg.num_seeds`` allows, so the post-processing time is an upper bound. Times are medians
of ``--repeat`` calls (wall and process CPU time) and memory the peak of each stage, both from
:func:`benchmarks.profiling.measure` (CPU: peak RSS, and ``work`` above the built model;
CUDA: peak allocated).
"""
import argparse
import json

import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmaffseg  # noqa: F401
from mmaffseg.cli import CfgOptionsAction, checkpoint_errors_exit, config_errors_exit, load_config
from mmaffseg.utils import load_model_weights

from .profiling import measure

DEFAULT_CONFIG = \
    'configs/instance_embedding/instance-embedding_r18-fpn_quickstart_synthetic-128x256.py'
SHARED = dict(size=[512, 1024], threads=2, warmup=1, repeat=5, device='cpu')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument('checkpoint', nargs='?', help='optional; random weights otherwise')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(0)
    with config_errors_exit():  # e.g. a misspelt --cfg-options key
        cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.pretrained = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if args.checkpoint:
        with checkpoint_errors_exit({args.checkpoint: 'CHECKPOINT'}):
            load_model_weights(model, args.checkpoint)
    model = model.to(args.device).eval()
    size = tuple(args.size)
    image = torch.randint(0, 256, (3, *size), dtype=torch.uint8, device=args.device)
    sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size))
    data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)

    with torch.no_grad():
        network = measure(lambda: model(data['inputs'], mode='tensor'), args.warmup,
                          args.repeat, device=args.device)
        predict = measure(lambda: model.predict(**data), args.warmup, args.repeat,
                          device=args.device)
        num = len(model.predict(**data)[0].pred_instances)
    print(json.dumps(dict(
        config=args.config, size=list(size), device=args.device, threads=args.threads,
        network_s=round(network['wall_s'], 4), predict_s=round(predict['wall_s'], 4),
        postprocess_s=round(predict['wall_s'] - network['wall_s'], 4),
        network_cpu_s=round(network['cpu_s'], 4), predict_cpu_s=round(predict['cpu_s'], 4),
        instances=num, network_peak_mb=round(network['peak_mb'], 1),
        network_work_mb=round(network['work_mb'], 1), predict_peak_mb=round(predict['peak_mb'], 1),
        predict_work_mb=round(predict['work_mb'], 1), peak_source=predict['peak_source']),
        indent=1))
    return 0
