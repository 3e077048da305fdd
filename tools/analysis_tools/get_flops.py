# Copyright (c) mmaffseg contributors. All rights reserved.
"""FLOPs and parameters of a config's model, as mmseg's tools/analysis_tools/get_flops.py.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--cfg-options ...]

Counts the inference path (``model.forward(mode='tensor')``), which excludes training-only
branches (auxiliary heads are still built; pass --cfg-options model.auxiliary_head=None to drop
them from the parameter count).
"""
import argparse

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.cli import CfgOptionsAction, config_errors_exit, load_config, registry_error_hints


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Get a model\'s FLOPs and parameters')
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs='+', default=[512, 1024],
                        help='input H W (one value: square)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    shape = args.shape * 2 if len(args.shape) == 1 else args.shape
    if len(shape) != 2:
        raise ValueError(f'--shape takes H W or one value, got {args.shape}')
    with config_errors_exit():  # e.g. a misspelt --cfg-options key
        cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with config_errors_exit(), registry_error_hints():
        model = MODELS.build(cfg.model).eval()
    inputs = torch.zeros(1, 3, *shape)
    with torch.no_grad():
        info = get_model_complexity_info(model, inputs=(inputs, ), show_table=False,
                                         show_arch=False)
    split = '=' * 30
    print(f'{split}\nInput shape: {tuple(shape)}\nFlops: {info["flops_str"]}\n'
          f'Params: {info["params_str"]}\n{split}')
    print('FLOPs count multiply-adds once, as mmseg reports them; check that every op of the '
          'model is supported before citing the number.')


if __name__ == '__main__':
    main()
