# Copyright (c) mmaffseg contributors. All rights reserved.
"""Make PSA / AffinityNet pseudo labels (or AffinityNet training labels) for a dataset.

    # 1. AffinityNet training labels from the CAMs (no AffinityNet yet)
    python tools/make_pseudo_labels.py CONFIG --cam-checkpoint CAM.pth --out DIR --affinity-labels
    # 2. pseudo labels: CAM -> random walk -> dense CRF, scored when ground truth exists
    python tools/make_pseudo_labels.py CONFIG --cam-checkpoint CAM.pth --aff-checkpoint AFF.pth \
        --out DIR [--no-crf] [--stages cam rw rw_crf] [--overwrite] [--cfg-options k=v ...]
    # several processes / GPUs (each takes every world_size-th image)
    torchrun --nproc_per_node 4 tools/make_pseudo_labels.py CONFIG ... --launcher pytorch

CONFIG is a pseudo-label config (``test_cfg = dict(type='PseudoLabelLoop', ...)``, see
``configs/psa/``). Outputs go to DIR/cam, DIR/affinity_labels, DIR/rw, DIR/rw_crf (PNG label maps
in the dataset's seg-map layout, ready as ``data_prefix.seg_map_path`` of a second-stage config),
with the CAMs cached in DIR/cams. Re-running skips the finished images. Images that fail
(unreadable, no image-level labels...) are listed at the end and in DIR/failures.txt.
DIR/provenance.json records what made each stage (checkpoint contents, settings, data); a rerun
reuses the stages made from the same inputs and stops before any work when one was made from
others (``--overwrite`` recomputes those stages). One run at a time writes DIR.

Exit codes: 0 all images done; 1 some images failed (the others are done); 2 bad arguments, a
missing or unreadable checkpoint (nothing done), DIR in use by another run or holding stages
made from other inputs (nothing done), or an output folder that is read-only or full (the run
stops; the outputs written so far are complete and a re-run resumes). Checkpoints are loaded
safely (docs/checkpoints.md).
"""
import argparse
import sys

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.cli import (
    add_launcher_args,
    build_runner,
    checkpoint_errors_exit,
    config_errors_exit,
    load_config,
    parse_launcher_args,
    registry_error_hints,
    report_error,
)
from mmaffseg.cli.pseudo_labels import prepare_pseudo_label_cfg
from mmaffseg.ops.psa_stages import CRF_STAGES, STAGE_NAMES
from mmaffseg.utils.config_errors import OutputDirError


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Make PSA pseudo labels')
    parser.add_argument('config', help='pseudo-label config file')
    parser.add_argument('--cam-checkpoint', required=True, help='CAM classifier checkpoint')
    parser.add_argument('--aff-checkpoint', help='AffinityNet checkpoint (random walk)')
    parser.add_argument('--out', help='output root (default: test_cfg.out_dir or '
                        '<work_dir>/pseudo_labels)')
    parser.add_argument('--affinity-labels', action='store_true',
                        help='make the AffinityNet training labels (stages cam, '
                        'affinity_labels) instead of pseudo labels')
    parser.add_argument('--stages', nargs='+',
                        choices=STAGE_NAMES,
                        help='stages to run (default: the config\'s)')
    parser.add_argument('--no-crf', action='store_true',
                        help='skip the stages that need the dense CRF: '
                        f'{", ".join(CRF_STAGES)}')
    parser.add_argument('--overwrite', action='store_true',
                        help='recompute the stages of the output folder that were made from '
                        'other checkpoints or settings (their files are removed first)')
    parser.add_argument('--allow-nonfinite-weights', action='store_true',
                        help='use checkpoints with NaN/inf weights (every image then fails on '
                        'its non-finite scores) instead of stopping with an error')
    parser.add_argument('--work-dir', help='dir for the logs')
    add_launcher_args(parser)
    return parse_launcher_args(parser)


def main() -> int:
    args = parse_args()
    try:
        cfg = load_config(args.config, args.cfg_options)
        prepare_pseudo_label_cfg(cfg, args.config, args.cam_checkpoint, args.aff_checkpoint,
                                 args.out, args.stages, args.affinity_labels, args.no_crf,
                                 args.work_dir, args.launcher, args.overwrite,
                                 args.allow_nonfinite_weights)
    except (FileNotFoundError, ValueError) as e:
        return report_error(str(e))
    checkpoints = {args.cam_checkpoint: '--cam-checkpoint', args.aff_checkpoint: '--aff-checkpoint'}
    with checkpoint_errors_exit(checkpoints), config_errors_exit():
        runner = build_runner(cfg)  # torchrun on a machine without CUDA: gloo
        with registry_error_hints():
            try:
                runner.test()
            except OutputDirError as e:  # in use, other inputs, read-only or full
                return report_error(e.strerror)
    return 1 if runner.test_loop.failures else 0


if __name__ == '__main__':
    sys.exit(main())
