# Copyright (c) mmaffseg contributors. All rights reserved.
"""Save a config's model at its initial weights, as a checkpoint ``tools/test.py`` accepts.

    python tools/analysis_tools/save_untrained_checkpoint.py CONFIG OUT.pth [--seed 0]
        [--cfg-options ...]

The weights are what ``tools/train.py`` would start from with the same seed (``init_weights``
after seeding; pretrained checkpoints named in the config are loaded as in training). Testing
this checkpoint gives the "untrained" reference that a trained model's metric is compared with.
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.cli import CfgOptionsAction, config_errors_exit, load_config, registry_error_hints


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Save a model at its initial weights')
    parser.add_argument('config')
    parser.add_argument('out', help='output .pth file')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with config_errors_exit():  # e.g. a misspelt --cfg-options key
        cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    set_random_seed(args.seed)
    with config_errors_exit(), registry_error_hints():
        model = MODELS.build(cfg.model)
    model.init_weights()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    tmp = args.out + '.tmp'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(seed=args.seed, untrained=True)), tmp)
    os.replace(tmp, args.out)
    print(f'saved the initial weights of {args.config} (seed {args.seed}) to {args.out}')


if __name__ == '__main__':
    main()
