# Copyright (c) mmaffseg contributors. All rights reserved.
"""What the inference demos (``demo/image_demo.py``, ``demo/video_demo.py``) share: the model
and painting arguments, their checks (device, window, input and output paths) made before the
model is loaded, and loading the model with one-line errors.

Every bad input ends the demo with ``<demo>: error: <ARGUMENT>: ...`` and exit status 2, as the
tools do (:mod:`.cli_errors`).
"""
import argparse
import os
import os.path as osp
import re
import sys
from typing import Callable, Optional, Union

import numpy as np
import torch.nn as nn
from mmseg.structures import SegDataSample

from ..apis.inference import init_model
from ..utils import check_output_folder
from .errors import (
    checkpoint_errors_exit,
    config_errors_exit,
    exit_with_error,
    registry_error_hints,
)
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


def add_painting_args(parser: argparse.ArgumentParser) -> None:
    """Add mmseg's demo arguments ``--opacity`` and ``--with-labels`` (checked by
    :func:`check_opacity`)."""
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='Opacity of painted segmentation map. In (0, 1] range.')
    parser.add_argument('--with-labels', action='store_true', default=False,
                        help='Whether to display the class labels.')


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


def check_device(device: str) -> None:
    """Exit with a one-line error naming ``--device`` unless torch knows the device and it is
    available here (CUDA / MPS present, the CUDA index below the number of GPUs)."""
    import torch
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        exit_with_error(f'--device: {device!r} is not a device; give cpu, cuda or cuda:N')
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            why = ('torch is built without CUDA' if torch.version.cuda is None else
                   'torch finds no GPU')
            exit_with_error(f'--device: {device} is not available ({why}); give --device cpu')
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            exit_with_error(f'--device: {device} is not available ({count} GPU(s): cuda:0 to '
                            f'cuda:{count - 1}); give one of these or cpu')
    elif dev.type == 'mps' and not torch.backends.mps.is_available():
        exit_with_error(f'--device: {device} is not available (torch finds no MPS device); give '
                        '--device cpu')


def _opencv_gui() -> Optional[str]:
    """The GUI toolkit OpenCV is built with (``'QT5'``, ``'GTK3'``, ``'WIN32UI'``...), or None
    (``opencv-python-headless``: ``cv2.imshow`` is not implemented)."""
    import cv2
    match = re.search(r'^\s*GUI:\s*(\S+)', cv2.getBuildInformation(), flags=re.M)
    gui = match.group(1) if match else 'NONE'
    return None if gui.upper() == 'NONE' else gui


def _matplotlib_backend_is_interactive() -> bool:
    """False for matplotlib's file-only backends (``agg``, ``pdf``, ``svg``...), which
    matplotlib picks by itself when there is no display: mmengine's ``Visualizer.show`` then
    waits forever for a key press in a window that never opens."""
    import matplotlib
    backend = matplotlib.get_backend().lower()
    try:
        from matplotlib.backends import BackendFilter, backend_registry
        file_only = backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE)
    except ImportError:  # matplotlib < 3.9
        from matplotlib.rcsetup import non_interactive_bk as file_only
    return backend not in {name.lower() for name in file_only}


def window_unavailable(toolkit: str) -> Optional[str]:
    """Why a result window cannot open here, or None.

    Args:
        toolkit (str): What draws the window: ``'matplotlib'`` (mmengine's
            ``Visualizer.show``, the image demo) or ``'cv2'`` (``cv2.imshow``, the video demo).

    Returns:
        str | None: The reason: no display server on Linux/BSD (``$DISPLAY`` and
        ``$WAYLAND_DISPLAY`` unset: OpenCV's Qt aborts the process), matplotlib's backend is
        file-only, or OpenCV is built without a GUI.
    """
    if sys.platform not in ('win32', 'cygwin', 'darwin') and not (
            os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        return 'no display for a window (DISPLAY and WAYLAND_DISPLAY are unset)'
    if toolkit == 'matplotlib' and not _matplotlib_backend_is_interactive():
        import matplotlib
        return (f'matplotlib\'s backend {matplotlib.get_backend()} cannot open a window (set '
                'MPLBACKEND to an interactive one such as TkAgg or QtAgg)')
    if toolkit == 'cv2' and _opencv_gui() is None:
        import cv2
        return (f'OpenCV {cv2.__version__} is built without a GUI (opencv-python-headless; '
                'opencv-python has one)')
    return None


def check_window(toolkit: str, fix: str) -> None:
    """Exit with a one-line error saying ``fix`` when a result window cannot open here
    (:func:`window_unavailable`).

    Args:
        toolkit (str): ``'matplotlib'`` or ``'cv2'``, as :func:`window_unavailable`.
        fix (str): The arguments that write a file instead (e.g. ``'give --out-file FILE'``).
    """
    why = window_unavailable(toolkit)
    if why:
        exit_with_error(f'{why}: {fix}')


def image_writer_problem(path: str) -> Optional[str]:
    """Why OpenCV (``mmcv.imwrite``) cannot write an image named ``path``, or None."""
    import cv2
    if cv2.haveImageWriter(path):
        return None
    return (f'OpenCV has no image writer for {osp.splitext(path)[1]} files ({path}); give a '
            '.png or .jpg file')


def check_input_file(path: str, argument: str, what: str) -> None:
    """Exit with a one-line error naming ``argument`` unless ``path`` is a file."""
    if not osp.isfile(path):
        exit_with_error(f'{argument}: {what} {path} does not exist (or is not a file); give the '
                        f'path of an existing {what}')


def check_output_file(path: str,
                      argument: str,
                      example: str,
                      writer_problem: Optional[Callable[[str], Optional[str]]] = None) -> None:
    """Exit with a one-line error naming ``argument`` unless a file can be written at ``path``;
    create its folder.

    Refused, before the folder is created: an existing folder, a name without an extension
    (OpenCV picks the format by it), a name ``writer_problem`` objects to; then the folder must
    be creatable and writable.

    Args:
        path (str): The output file.
        argument (str): The argument that names it (``'--out-file'``).
        example (str): A file name of the right kind, for the messages (``'painted.png'``).
        writer_problem (callable, optional): ``path`` -> why the writer cannot write it, or
            None (e.g. :func:`image_writer_problem`).
    """
    if osp.isdir(path):
        exit_with_error(f'{argument}: {path} is a folder; give a file name, e.g. '
                        f'{osp.join(path, example)}')
    if not osp.splitext(osp.basename(path))[1]:
        exit_with_error(f'{argument}: {path} has no extension, which tells OpenCV the format '
                        f'to write; give e.g. {path}{osp.splitext(example)[1]}')
    problem = writer_problem(path) if writer_problem is not None else None
    if problem:
        exit_with_error(f'{argument}: {problem}')
    with config_errors_exit():
        check_output_folder(osp.dirname(osp.abspath(path)), argument)


def load_model_or_exit(args: argparse.Namespace) -> nn.Module:
    """The model of ``args.config`` with ``args.checkpoint`` (:func:`.inference.init_model`)
    on ``args.device``, or exit 2 with one line naming ``--device``, CONFIG or CHECKPOINT."""
    check_device(args.device)
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
