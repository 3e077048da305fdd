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

Each selection option is also a setting of the config's ``test_cfg`` (``sweep``,
``low_alphas``, ``high_ratio``, ``rw_alphas``, ``rw_betas``, ``select_on``, ``result_file``; e.g.
``--cfg-options test_cfg.select_on=rw``): an option left out keeps the config's value, an option
given wins (one line on stderr says which value it replaced).
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
import inspect
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
from mmaffseg.wsss.param_selection import AFFINITY_STAGE, SWEEPS, PSAParamSelectionLoop

SELECTION_LOOP = PSAParamSelectionLoop.__name__
SELECT_ON_DEFAULT = inspect.signature(PSAParamSelectionLoop).parameters['select_on'].default


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Choose PSA alphas / beta on a selection set')
    parser.add_argument('config', help='pseudo-label config file')
    parser.add_argument('--sweep', choices=SWEEPS,
                        help='affinity: low/high alpha; walk: walk alpha and beta (or the '
                        'config\'s test_cfg.sweep)')
    parser.add_argument('--cam-checkpoint', required=True, help='CAM classifier checkpoint')
    parser.add_argument('--aff-checkpoint', help='AffinityNet checkpoint (--sweep walk)')
    parser.add_argument('--out', help='output root (CAM cache, the JSON)')
    parser.add_argument('--result', help='JSON file of the result (test_cfg.result_file)')
    parser.add_argument('--low-alphas', type=float, nargs='+',
                        help='low-alpha candidates (test_cfg.low_alphas; default 1 2 4 8)')
    parser.add_argument('--high-ratio', type=float,
                        help='high alpha = ratio x low alpha (test_cfg.high_ratio; PSA: 32 / 4 '
                        '= 8)')
    parser.add_argument('--rw-alphas', type=float, nargs='+',
                        help='walk-alpha candidates (test_cfg.rw_alphas; default 2 4 8 16)')
    parser.add_argument('--rw-betas', type=float, nargs='+',
                        help='beta candidates (test_cfg.rw_betas; default 4 8 16)')
    parser.add_argument('--select-on', choices=WALK_STAGES,
                        help='walk criterion (test_cfg.select_on): the walk + dCRF labels '
                        '(rw_crf, the default) or the walk\'s (rw)')
    parser.add_argument('--work-dir', help='dir for the logs')
    parser.add_argument('--overwrite', action='store_true',
                        help='recompute the cached CAMs of DIR when they were made from another '
                        'CAM checkpoint or other settings')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='config overrides, e.g. test_dataloader.dataset.indices=[...]')
    return parser.parse_args(argv)


# CLI option -> the selection loop's setting; each is also settable as test_cfg.<setting>
OPTION_SETTINGS = dict(sweep='sweep', low_alphas='low_alphas', high_ratio='high_ratio',
                       rw_alphas='rw_alphas', rw_betas='rw_betas', select_on='select_on',
                       result='result_file')


def _selection_loop(cfg) -> None:
    """Name the selection loop before ``--cfg-options`` are checked, so that its settings
    (``test_cfg.select_on``, ``rw_betas``, ...) validate against it."""
    if cfg.get('test_cfg') and cfg.test_cfg.get('type') == 'PseudoLabelLoop':
        cfg.test_cfg.type = SELECTION_LOOP  # other configs: refused by prepare_pseudo_label_cfg


def apply_options(loop: dict, args: argparse.Namespace) -> None:
    """Set the loop's selection settings from the CLI options that were given.

    An option left out keeps the config's value (``--cfg-options test_cfg.select_on=rw``
    included); an option given wins, with one line when it replaces another config value.
    """
    for option, setting in OPTION_SETTINGS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if loop.get(setting) is not None and loop[setting] != value:
            flag = '--' + option.replace('_', '-')
            print(f'select_psa_params.py: {flag} {value} replaces the config\'s '
                  f'test_cfg.{setting}={loop[setting]}', file=sys.stderr)
        loop[setting] = value


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options, before_options=_selection_loop)
        loop = cfg.test_cfg
        apply_options(loop, args)
        if loop.get('sweep') is None:
            return report_error('give --sweep (affinity or walk) or test_cfg.sweep')
        select_on = loop.get('select_on') or SELECT_ON_DEFAULT
        stages = [AFFINITY_STAGE] if loop.sweep == 'affinity' else [select_on]
        prepare_pseudo_label_cfg(cfg, args.config, args.cam_checkpoint, args.aff_checkpoint,
                                 args.out, stages, work_dir=args.work_dir,
                                 overwrite=args.overwrite, loop_type=SELECTION_LOOP)
    except (FileNotFoundError, ValueError) as e:
        return report_error(str(e))
    loop.pop('stages')
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
