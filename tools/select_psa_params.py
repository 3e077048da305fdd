# Copyright (c) mmaffseg contributors. All rights reserved.
"""Choose PSA's alphas / beta on a labelled selection set (images that are not scored).

    # low / high alpha of the affinity labels (CAM network only)
    python tools/select_psa_params.py CONFIG --sweep affinity --cam-checkpoint CAM.pth \
        --out DIR [--low-alphas 1 2 4 8 --high-ratio 8] --cfg-options \
        "test_dataloader.dataset.indices=[0,1,...]"
    # walk alpha / beta (with the trained AffinityNet)
    python tools/select_psa_params.py CONFIG --sweep walk --cam-checkpoint CAM.pth \
        --aff-checkpoint AFF.pth --out DIR [--rw-alphas 2 4 8 16 --rw-betas 4 8 16] \
        [--select-on rw_crf] --cfg-options ...

CONFIG is a pseudo-label config (``configs/psa/*pseudo-labels*.py``); its ``test_dataloader``
is the selection set and must load the masks. Nothing else is read. The CAMs are cached in
DIR/cams (shared with ``tools/make_pseudo_labels.py --out DIR``). Every candidate's mIoU and the
chosen values go to DIR/selection_<sweep>.json (``--result`` to change) and the log; see
:mod:`mmaffseg.wsss.param_selection`. DIR/provenance.json records what made the CAMs and the
result: cached CAMs of another CAM checkpoint or other settings stop the run before any work
(``--overwrite`` recomputes them). Exit code 2: bad arguments, a missing checkpoint, DIR in use
by another run or holding CAMs of other inputs.
"""
import argparse
import sys

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.cli import (
    CfgOptionsAction,
    build_runner,
    checkpoint_errors_exit,
    config_errors_exit,
    load_config,
    registry_error_hints,
    report_error,
)
from mmaffseg.cli.pseudo_labels import prepare_pseudo_label_cfg
from mmaffseg.ops.psa_stages import WALK_STAGES
from mmaffseg.utils.config_errors import OutputDirError
from mmaffseg.wsss.param_selection import AFFINITY_STAGE, SWEEPS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Choose PSA alphas / beta on a selection set')
    parser.add_argument('config', help='pseudo-label config file')
    parser.add_argument('--sweep', choices=SWEEPS, required=True,
                        help='affinity: low/high alpha; walk: walk alpha and beta')
    parser.add_argument('--cam-checkpoint', required=True, help='CAM classifier checkpoint')
    parser.add_argument('--aff-checkpoint', help='AffinityNet checkpoint (--sweep walk)')
    parser.add_argument('--out', help='output root (CAM cache, the JSON)')
    parser.add_argument('--result', help='JSON file of the result')
    parser.add_argument('--low-alphas', type=float, nargs='+', default=[1, 2, 4, 8])
    parser.add_argument('--high-ratio', type=float, default=8,
                        help='high alpha = ratio x low alpha (PSA: 32 / 4 = 8)')
    parser.add_argument('--rw-alphas', type=float, nargs='+', default=[2, 4, 8, 16])
    parser.add_argument('--rw-betas', type=float, nargs='+', default=[4, 8, 16])
    parser.add_argument('--select-on', choices=WALK_STAGES, default='rw_crf',
                        help='walk criterion: the walk + dCRF labels (default) or the walk\'s')
    parser.add_argument('--work-dir', help='dir for the logs')
    parser.add_argument('--overwrite', action='store_true',
                        help='recompute the cached CAMs of DIR when they were made from another '
                        'CAM checkpoint or other settings')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='config overrides, e.g. test_dataloader.dataset.indices=[...]')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    stages = [AFFINITY_STAGE] if args.sweep == 'affinity' else [args.select_on]
    try:
        cfg = load_config(args.config, args.cfg_options)
        prepare_pseudo_label_cfg(cfg, args.config, args.cam_checkpoint, args.aff_checkpoint,
                                 args.out, stages, work_dir=args.work_dir,
                                 overwrite=args.overwrite)
    except (FileNotFoundError, ValueError) as e:
        return report_error(str(e))
    loop = cfg.test_cfg
    loop.pop('stages')
    loop.update(type='PSAParamSelectionLoop', sweep=args.sweep, low_alphas=args.low_alphas,
                high_ratio=args.high_ratio, rw_alphas=args.rw_alphas, rw_betas=args.rw_betas,
                select_on=args.select_on, result_file=args.result)
    checkpoints = {args.cam_checkpoint: '--cam-checkpoint', args.aff_checkpoint: '--aff-checkpoint'}
    with checkpoint_errors_exit(checkpoints), config_errors_exit():
        runner = build_runner(cfg)
        with registry_error_hints():
            try:
                runner.test()
            except OutputDirError as e:  # in use, other inputs, read-only or full
                return report_error(e.strerror)
    return 0


if __name__ == '__main__':
    sys.exit(main())
