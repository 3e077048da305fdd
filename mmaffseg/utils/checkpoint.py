# Copyright (c) mmaffseg contributors. All rights reserved.
"""Trusted local checkpoint loading for torch >= 2.6.

torch 2.6 changed ``torch.load``'s default to ``weights_only=True``. mmengine 0.10.7 calls
``torch.load`` without the argument, and the checkpoints mmengine itself writes hold pickled
objects (message hub history buffers, numpy scalars, dataset meta), so ``--resume``, ``load_from``
and ``tools/test.py`` fail with an ``UnpicklingError``.

:func:`enable_trusted_checkpoint_loading` replaces mmengine's loader for local paths with one
that passes ``weights_only=False``. Unpickling can execute arbitrary code: only load
checkpoints you produced yourself or otherwise trust. mmaffseg's tools call it; remote schemes
(http, s3...) are left untouched and keep torch's safe default.
"""
import os.path as osp
from typing import Callable, Optional, Union

import torch
from mmengine.runner.checkpoint import CheckpointLoader

_ENABLED = False


def load_trusted_local_checkpoint(filename: str,
                                  map_location: Optional[Union[str, Callable]] = None
                                  ) -> dict:
    """Load a local checkpoint written by mmengine/mmaffseg (full unpickling).

    Args:
        filename (str): Path of the checkpoint; ``~`` is expanded.
        map_location (str | Callable, optional): Passed to :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file "{filename}" does not exist')
    return torch.load(filename, map_location=map_location, weights_only=False)


def enable_trusted_checkpoint_loading() -> None:
    """Make mmengine load local checkpoints with ``weights_only=False``.

    Idempotent. Affects only paths without a URL scheme (mmengine's ``''`` prefix).
    """
    global _ENABLED
    if _ENABLED:
        return
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_trusted_local_checkpoint)
    _ENABLED = True
