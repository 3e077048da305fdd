# Copyright (c) mmaffseg contributors. All rights reserved.
"""Test (and evaluate) a checkpoint: mmseg 1.x's tools/test.py with mmaffseg registered.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show]
                         [--show-dir DIR] [--tta] [--non-strict] [--allow-nonfinite-weights]
                         [--cfg-options k=v ...] [--launcher ...]

The checkpoint is loaded safely (weights-only; docs/checkpoints.md) and strictly: a checkpoint
whose weights do not fit the config's model is an error unless --non-strict is given, one with
NaN/inf weights (a diverged training) unless --allow-nonfinite-weights is given. A missing,
unreadable, refused or mismatching checkpoint exits with status 2 and a one-line message.
"""
import argparse

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.cli import (
    add_launcher_args,
    build_runner,
    check_data_roots,
    check_loaded_checkpoint,
    checkpoint_errors_exit,
    config_errors_exit,
    load_config,
    parse_launcher_args,
    prepare_test_cfg,
    registry_error_hints,
)
from mmaffseg.cli.inference_args import add_weight_loading_args
from mmaffseg.utils import check_output_folder


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument(
        '--out',
        help='dir to save the predictions (keeps results for offline eval): given to every test '
        'evaluator that takes an output_dir; with several, one sub-folder each, named by type')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument('--show-dir', help='dir to save painted predictions')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds between shows')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    add_weight_loading_args(parser, 'test')
    add_launcher_args(parser)
    return parse_launcher_args(parser)


def main() -> None:
    args = parse_args()
    with config_errors_exit():
        cfg = load_config(args.config, args.cfg_options)
    with checkpoint_errors_exit({args.checkpoint: 'CHECKPOINT'}), config_errors_exit():
        prepare_test_cfg(cfg, args.config, args.checkpoint, args.work_dir, args.out, args.show,
                         args.show_dir, args.wait_time, args.tta, args.launcher)
        check_data_roots(cfg, keys=('test', ))
        check_output_folder(cfg.work_dir, '--work-dir')
        if args.out:
            check_output_folder(args.out, '--out')
        runner = build_runner(cfg)
        check_loaded_checkpoint(runner, args.checkpoint, strict=not args.non_strict,
                                finite=not args.allow_nonfinite_weights)
        with registry_error_hints():
            runner.test()


if __name__ == '__main__':
    main()
