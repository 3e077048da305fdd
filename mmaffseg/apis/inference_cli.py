# Copyright (c) mmaffseg contributors. All rights reserved.
"""What the inference demos (``demo/image_demo.py``, ``demo/video_demo.py``) share: the model
arguments, loading the model with one-line errors, and checking input and output paths.

Every bad input ends the demo with ``<demo>: error: <ARGUMENT>: ...`` and exit status 2, as the
tools do (:mod:`.cli_errors`).
"""
import argparse
import os.path as osp
from typing import Union

import numpy as np
import torch.nn as nn
from mmseg.structures import SegDataSample

from ..utils import check_output_folder
from .cli_errors import (
    checkpoint_errors_exit,
    config_errors_exit,
    exit_with_error,
    registry_error_hints,
)
from .inference import init_model
from .runner_setup import check_checkpoint_file, load_config


def default_device() -> str:
    """``'cuda:0'`` where CUDA is available, else ``'cpu'``."""
    import torch
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """Add mmseg's demo arguments ``config``, ``checkpoint`` and ``--device``, and
    ``--non-strict`` and ``--allow-nonfinite-weights`` (as ``tools/test.py``)."""
    parser.add_argument('config', help='Config file')
    parser.add_argument('checkpoint', help='Checkpoint file')
    parser.add_argument('--device', default=default_device(),
                        help='Device used for inference (default: cuda:0 if available, else cpu)')
    add_weight_loading_args(parser)


def add_weight_loading_args(parser: argparse.ArgumentParser, verb: str = 'load') -> None:
    """Add ``--non-strict`` and ``--allow-nonfinite-weights``, the two ways out of the strict,
    finite checkpoint loading of the tools that test or run a model.

    Args:
        parser (ArgumentParser): The tool's parser.
        verb (str): What the tool does with the checkpoint, for the help (``'load'``,
            ``'test'``).
    """
    parser.add_argument(
        '--non-strict', action='store_true',
        help='load a checkpoint whose weights do not fit the model (missing, unexpected or '
        'mis-sized keys stay as initialised) instead of stopping with an error')
    parser.add_argument(
        '--allow-nonfinite-weights', action='store_true',
        help=f'{verb} a checkpoint with NaN/inf weights (a diverged training) instead of '
        'stopping with an error naming the first such tensor')


def check_opacity(opacity: float) -> None:
    """Exit with a one-line error unless ``--opacity`` is in (0, 1]."""
    if not 0 < opacity <= 1:
        exit_with_error(f'--opacity: expected a number in (0, 1], got {opacity}')


def check_input_file(path: str, argument: str, what: str) -> None:
    """Exit with a one-line error naming ``argument`` unless ``path`` is a file."""
    if not osp.isfile(path):
        exit_with_error(f'{argument}: {what} {path} does not exist (or is not a file); give the '
                        f'path of an existing {what}')


def check_output_file(path: str, argument: str) -> None:
    """Create the folder of an output file and check that it is writable (exit 2 if not)."""
    with config_errors_exit():
        check_output_folder(osp.dirname(osp.abspath(path)), argument)


def load_model_or_exit(args: argparse.Namespace) -> nn.Module:
    """The model of ``args.config`` with ``args.checkpoint`` (:func:`.inference.init_model`),
    or exit 2 with one line naming CONFIG or CHECKPOINT."""
    with config_errors_exit():
        cfg = load_config(args.config)
    with checkpoint_errors_exit({args.checkpoint: 'CHECKPOINT'}), config_errors_exit(), \
            registry_error_hints():
        check_checkpoint_file(args.checkpoint)
        return init_model(cfg, args.checkpoint, device=args.device, strict=not args.non_strict,
                          opt_out='--non-strict',
                          allow_nonfinite=args.allow_nonfinite_weights,
                          nonfinite_opt_out='--allow-nonfinite-weights')


def inference_or_exit(model: nn.Module, image: Union[str, np.ndarray]) -> SegDataSample:
    """mmseg's ``inference_model`` on one image; a model that does not segment images
    (AffinityNet predicts pair affinities) exits 2 with its own message, naming CONFIG."""
    from mmseg.apis import inference_model
    try:
        return inference_model(model, image)
    except NotImplementedError as e:
        exit_with_error(f'CONFIG: {e}')
