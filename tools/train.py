# Copyright (c) mmaffseg contributors. All rights reserved.
"""Train a segmentor: mmseg 1.x's tools/train.py with mmaffseg registered.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

Multi-GPU / multi-node training is mmengine's DDP, started by tools/dist_train.sh (torchrun).
Checkpoints are written atomically with the random generator states, and read safely (see
docs/checkpoints.md); --resume needs a training checkpoint whose weights fit the model. A
missing, unreadable, refused or mismatching checkpoint exits with status 2 and a one-line
message.
"""
import argparse

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.apis import (
    add_launcher_args,
    build_runner,
    check_data_roots,
    check_loaded_checkpoint,
    checkpoint_errors_exit,
    config_errors_exit,
    load_config,
    parse_launcher_args,
    prepare_train_cfg,
    registry_error_hints,
)
from mmaffseg.utils import check_output_folder


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
    with config_errors_exit():
        cfg = load_config(args.config, args.cfg_options)
    named = {cfg.get('load_from') or '': 'load_from', args.resume or '': '--resume'}
    with checkpoint_errors_exit(named), config_errors_exit():
        prepare_train_cfg(cfg, args.config, args.work_dir, args.resume, args.amp, args.launcher)
        named.setdefault(cfg.load_from or '', '--resume (the latest checkpoint of the work dir)')
        check_data_roots(cfg, keys=('train', 'val'))
        check_output_folder(cfg.work_dir, '--work-dir')
        runner = build_runner(cfg)
        if cfg.resume:
            check_loaded_checkpoint(runner, cfg.load_from, strict=True, resume=True)
        with registry_error_hints():
            runner.train()


if __name__ == '__main__':
    main()
