# Copyright (c) mmaffseg contributors. All rights reserved.
"""Export an mmaffseg (or mmseg) segmentor to ONNX and check it in ONNX Runtime.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --shape H W [--dynamic]
        [--out FILE] [--verify] [--verify-shape H W] [--opset 17] [--cfg-options k=v ...]

The graph maps the preprocessed batch ``input`` (B, 3, H, W) (after the model's
``SegDataPreProcessor``: colour swap and ``(img - mean) / std``) to the whole-image inference
logits ``seg_logits`` (B, C, H, W) (``embedding`` for semantic-feature models), i.e. what
``model.predict`` gives as ``seg_logits`` for an unresized image; see
:mod:`mmaffseg.cli.onnx_export` for what each model family puts in the graph (the dense CRF
and the instance-embedding post-processing stay outside). ``--verify`` runs the file in ONNX
Runtime on a seeded random input and prints the largest absolute difference to PyTorch and the
fraction of pixels with the same arg-max class; with ``--dynamic`` it also checks a second
size (``--verify-shape``, default ``H + 8, W - 8``).

The checkpoint is loaded safely and strictly, as by ``tools/test.py`` (docs/checkpoints.md).
Exit status: 0; 1 when the export is refused (the message says why) or the check fails; 2 for
a missing config, an unusable checkpoint, an output folder that cannot be made or a size above
the image loaders' pixel limit (``MMAFFSEG_MAX_IMAGE_PIXELS`` raises it).
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.cli import (
    CfgOptionsAction,
    checkpoint_errors_exit,
    config_errors_exit,
    exit_with_error,
    load_config,
    positive_int,
    registry_error_hints,
    report_error,
)
from mmaffseg.cli.onnx_export import ExportError, export_onnx, verify_onnx
from mmaffseg.utils import load_model_weights
from mmaffseg.utils.image_io import MAX_PIXELS_ENV, max_image_pixels


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a segmentor to ONNX')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--shape', type=positive_int, nargs=2, required=True, metavar=('H', 'W'),
                        help='input height and width (the traced and, without --dynamic, the '
                        'only size)')
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic height and width (the batch size stays 1)')
    parser.add_argument('--out', help='output file (default: CONFIG name + .onnx in the '
                        'current directory)')
    parser.add_argument('--verify', action='store_true',
                        help='compare ONNX Runtime with PyTorch on a random input')
    parser.add_argument('--verify-shape', type=positive_int, nargs=2, metavar=('H', 'W'),
                        help='second size checked with --dynamic (default: H + 8, W - 8)')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')
    parser.add_argument('--atol', type=float, default=1e-3,
                        help='--verify fails above this max abs difference relative to the '
                        'largest |logit| (default 1e-3)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args()


def check_shapes(args: argparse.Namespace) -> None:
    """Exit 2 on a ``--shape`` / ``--verify-shape`` above the loaders' pixel limit (the traced
    input of 20000 x 20000 pixels alone is 4.8 GB, its activations many times that)."""
    try:
        limit = max_image_pixels()
    except ValueError as e:
        exit_with_error(str(e))
    for name, shape in (('--shape', args.shape), ('--verify-shape', args.verify_shape)):
        if shape and shape[0] * shape[1] > limit:
            exit_with_error(f'{name} {shape[0]} {shape[1]}: {shape[0] * shape[1]} pixels, above '
                            f'the pixel limit of {limit} (that of the image loaders); give a '
                            f'smaller size, or raise the limit with {MAX_PIXELS_ENV}')


def main() -> int:
    args = parse_args()
    check_shapes(args)
    with config_errors_exit():
        cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with config_errors_exit(), registry_error_hints():
        model = MODELS.build(cfg.model)
    with checkpoint_errors_exit({args.checkpoint: 'CHECKPOINT'}):
        load_model_weights(model, args.checkpoint)
    model.eval()
    out = args.out or osp.splitext(osp.basename(args.config))[0] + '.onnx'
    try:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    except OSError as e:
        return report_error(f'--out: cannot create the folder of {out}: {e.strerror}')
    try:
        export_onnx(model, args.shape, out, dynamic=args.dynamic, opset_version=args.opset)
    except ExportError as err:
        print(f'cannot export {args.config}: {err}', file=sys.stderr)
        return 1
    print(f'saved {out} (input {"dynamic" if args.dynamic else "fixed"} '
          f'{args.shape[0]}x{args.shape[1]})')
    if not args.verify:
        return 0
    shapes = [tuple(args.shape)]
    if args.dynamic:
        h, w = args.shape
        shapes.append(tuple(args.verify_shape or (h + 8, max(w - 8, 1))))
    ok = True
    generator = torch.Generator().manual_seed(0)
    for shape in shapes:
        inputs = torch.randn(1, 3, *shape, generator=generator)
        result = verify_onnx(model, out, inputs)
        passed = result['max_abs_diff'] <= args.atol * max(result['max_abs_ref'], 1.0)
        ok &= passed
        print(f'verify {shape[0]}x{shape[1]}: max abs diff {result["max_abs_diff"]:.3e} '
              f'(max |ref| {result["max_abs_ref"]:.3e}), argmax agreement '
              f'{100 * result["argmax_agreement"]:.3f}% -> {"OK" if passed else "FAILED"}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
