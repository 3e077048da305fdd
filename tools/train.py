# Copyright (c) mmaffseg contributors. All rights reserved.
"""Train a segmentor: mmseg 1.x's tools/train.py with mmaffseg registered.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

Multi-GPU / multi-node training is mmengine's DDP, started by tools/dist_train.sh (torchrun).
"""
import argparse

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.apis import (
    add_launcher_args,
    build_runner,
    check_data_roots,
    load_config,
    parse_launcher_args,
    prepare_train_cfg,
    registry_error_hints,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume training: alone, from the latest checkpoint in the work dir; with a path, '
        'from that checkpoint')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic-mixed-precision training')
    add_launcher_args(
        parser, 'override config settings, key=value pairs, e.g. train_cfg.max_iters=100')
    return parse_launcher_args(parser)


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    prepare_train_cfg(cfg, args.config, args.work_dir, args.resume, args.amp, args.launcher)
    check_data_roots(cfg, keys=('train', 'val'))
    runner = build_runner(cfg)
    with registry_error_hints():
        runner.train()


if __name__ == '__main__':
    main()
