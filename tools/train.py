# Copyright (c) mmaffseg contributors. All rights reserved.
"""Train a segmentor: mmseg 1.x's tools/train.py with mmaffseg registered.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]
                          [--amp [auto|bfloat16|float16]] [--channels-last] [--overwrite]
                          [--accept-config-change] [--cfg-options k=v ...] [--launcher ...]

Multi-GPU / multi-node training is mmengine's DDP, started by tools/dist_train.sh (torchrun).
Checkpoints are written atomically with the random generator states, and read safely (see
docs/checkpoints.md); --resume needs a training checkpoint whose weights fit the model. A
missing, unreadable, refused or mismatching checkpoint exits with status 2 and a one-line
message.

One run at a time writes a work dir (a second one exits with status 2 naming the first), and
only with the settings its checkpoints were made with (provenance.json): --resume with other
settings needs --accept-config-change, a fresh run over checkpoints of other settings needs
--overwrite. A non-finite loss stops training (exit status 1) before a non-finite model is
saved; see the README, "Reliability". ``--amp`` trains with automatic mixed precision on any
device (bfloat16 where supported, else float16 with dynamic loss scaling) and
``--channels-last`` in the channels-last memory format (docs/gpu_and_mixed_precision.md).
"""
import argparse

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.cli import (
    add_launcher_args,
    add_precision_args,
    build_runner,
    check_data_roots,
    check_loaded_checkpoint,
    check_work_dir_record,
    checkpoint_errors_exit,
    checkpoint_folder,
    claim_work_dir,
    config_errors_exit,
    default_work_dir,
    exit_with_error,
    load_config,
    parse_launcher_args,
    prepare_train_cfg,
    registry_error_hints,
    training_failure_exit,
)
from mmaffseg.cli.config_checks import check_train_settings


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
    add_precision_args(parser)
    parser.add_argument(
        '--overwrite', action='store_true',
        help='start afresh in a work dir that holds checkpoints of other settings, deleting '
        'them (without it such a run stops)')
    parser.add_argument(
        '--accept-config-change', action='store_true',
        help='--resume a work dir whose checkpoints were made with other settings, continuing '
        'with the new ones (without it such a resume stops, naming the changes)')
    add_launcher_args(
        parser, 'override config settings, key=value pairs, e.g. train_cfg.max_iters=100')
    return parse_launcher_args(parser)


def main() -> None:
    args = parse_args()
    if args.overwrite and args.resume:
        exit_with_error('--overwrite starts afresh (deleting the work dir\'s checkpoints of other '
                        'settings): it cannot be combined with --resume')
    with config_errors_exit():
        cfg = load_config(args.config, args.cfg_options)
        check_train_settings(cfg)  # a bad setting stops before the work dir is made
    config_load_from = cfg.get('load_from')
    named = {config_load_from or '': 'load_from', args.resume or '': '--resume'}
    # the work dir's lock is taken before anything reads or writes there
    work_dir = default_work_dir(cfg, args.config, args.work_dir)
    with checkpoint_errors_exit(named), config_errors_exit(), claim_work_dir(
            work_dir, args.launcher, checkpoint_folder(cfg, work_dir)):
        prepare_train_cfg(cfg, args.config, args.work_dir, args.resume, args.amp, args.launcher,
                          args.channels_last)
        named.setdefault(cfg.load_from or '', '--resume (the latest checkpoint of the work dir)')
        check_data_roots(cfg, keys=('train', 'val'))
        check_work_dir_record(cfg, config_load_from, args.overwrite, args.accept_config_change)
        runner = build_runner(cfg)
        if cfg.resume:
            check_loaded_checkpoint(runner, cfg.load_from, strict=True, resume=True)
        with registry_error_hints(), training_failure_exit():
            runner.train()


if __name__ == '__main__':
    main()
