# Copyright (c) mmaffseg contributors. All rights reserved.
"""``--amp`` and ``--channels-last``: one implementation for ``tools/train.py`` and
``tools/benchmark_suite.py``.

``--amp`` mirrors mmseg's ``tools/train.py --amp`` (the config's ``OptimWrapper`` becomes an AMP
wrapper), with the autocast dtype chosen per device and a wrapper that also trains on CPU
(:class:`~mmaffseg.engine.AnyDeviceAmpOptimWrapper`):

* ``--amp`` (``auto``): bfloat16 on CPU and on CUDA devices that support it
  (``torch.cuda.is_bf16_supported()``, Ampere and later), without loss scaling (bfloat16 has
  float32's exponent range); float16 with dynamic loss scaling (mmseg's setting) on other CUDA
  devices;
* ``--amp bfloat16``: bfloat16 without loss scaling (refused on a CUDA device without it);
* ``--amp float16``: float16 with dynamic loss scaling, CUDA only (mmengine's CPU autocast is
  bfloat16 only).

``--channels-last`` adds :class:`~mmaffseg.engine.ChannelsLastHook` (model and batches in the
channels-last memory format). Both are settings of the config (``optim_wrapper`` and
``custom_hooks``), so they are part of what a run's provenance records.
"""
import argparse
from typing import Optional

import torch
from mmengine.config import Config

from ..utils.config_errors import ConfigCheckError

#: Choices of ``--amp``.
AMP_CHOICES = ('auto', 'bfloat16', 'float16')
#: The optimizer wrapper type ``--amp`` sets.
AMP_WRAPPER = 'AnyDeviceAmpOptimWrapper'
#: Optimizer wrapper types ``--amp`` replaces (plain, or already mixed precision).
_REPLACEABLE = ('OptimWrapper', 'AmpOptimWrapper', AMP_WRAPPER)
#: The hook ``--channels-last`` adds.
CHANNELS_LAST_HOOK = 'ChannelsLastHook'


def add_precision_args(parser: argparse.ArgumentParser, what: str = 'training') -> None:
    """``--amp [auto|bfloat16|float16]`` (``args.amp``: None without it) and
    ``--channels-last``, with the same help in every tool."""
    parser.add_argument(
        '--amp', nargs='?', const='auto', default=None, choices=AMP_CHOICES,
        help=f'automatic mixed precision {what}: alone (auto), bfloat16 on CPU and on CUDA '
        'devices that support it, else float16 with dynamic loss scaling; or name the dtype')
    parser.add_argument(
        '--channels-last', action='store_true',
        help=f'{what} with the model and the batches in the channels-last memory format')


def amp_dtype(choice: str = 'auto', device: Optional[str] = None) -> str:
    """The autocast dtype of ``--amp choice`` for training on ``device``.

    Args:
        choice (str): One of :data:`AMP_CHOICES`.
        device (str, optional): ``'cpu'`` or ``'cuda'``. Defaults to None: this machine's
            (CUDA if available). For ``'cuda'`` on a machine without CUDA (a Slurm submission
            node) a named dtype is taken as it is, and ``'auto'`` is refused.

    Raises:
        ConfigCheckError: For an unknown choice, float16 on CPU, bfloat16 on a CUDA device
            without it, or ``'auto'`` for a CUDA device this machine cannot see.
    """
    if choice not in AMP_CHOICES:
        raise ConfigCheckError(f'--amp: expected one of {", ".join(AMP_CHOICES)}, got '
                               f'{choice!r}')
    cuda_here = torch.cuda.is_available()
    device = device or ('cuda' if cuda_here else 'cpu')
    if device == 'cpu':
        if choice == 'float16':
            raise ConfigCheckError('--amp float16: autocast on CPU runs bfloat16 only; use '
                                   '--amp (or --amp bfloat16), or train on a GPU')
        return 'bfloat16'
    if not cuda_here:
        if choice == 'auto':
            raise ConfigCheckError('--amp: this machine sees no GPU, so it cannot choose the '
                                   "training GPUs' dtype; name it: --amp bfloat16 (Ampere and "
                                   'later) or --amp float16')
        return choice
    bf16 = torch.cuda.is_bf16_supported()
    if choice == 'auto':
        return 'bfloat16' if bf16 else 'float16'
    if choice == 'bfloat16' and not bf16:
        raise ConfigCheckError('--amp bfloat16: this CUDA device does not support bfloat16 '
                               '(torch.cuda.is_bf16_supported() is False); use --amp float16')
    return choice


def use_amp(cfg: Config, choice: str = 'auto', device: Optional[str] = None) -> str:
    """Train ``cfg`` with automatic mixed precision (in place); returns the dtype.

    The config's ``OptimWrapper`` (or ``AmpOptimWrapper``) becomes :data:`AMP_WRAPPER` with
    ``dtype`` from :func:`amp_dtype` and ``loss_scale='dynamic'`` for float16 (a loss scale
    the config already set for float16 is kept), ``dict(enabled=False)`` for bfloat16.

    Raises:
        ConfigCheckError: For another wrapper type (e.g. ``OptimWrapperDict``), or a choice the
            device cannot run.
    """
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper not in _REPLACEABLE:
        raise ConfigCheckError(f'--amp needs optim_wrapper.type OptimWrapper or '
                               f'AmpOptimWrapper, the config has {wrapper}')
    dtype = amp_dtype(choice, device)
    already_fp16 = wrapper != 'OptimWrapper' and cfg.optim_wrapper.get('dtype') in (None,
                                                                                    'float16')
    cfg.optim_wrapper.type = AMP_WRAPPER
    cfg.optim_wrapper.dtype = dtype
    if dtype == 'bfloat16':
        cfg.optim_wrapper.loss_scale = dict(enabled=False)
    elif not (already_fp16 and 'loss_scale' in cfg.optim_wrapper):
        cfg.optim_wrapper.loss_scale = 'dynamic'
    return dtype


def use_channels_last(cfg: Config) -> None:
    """Run ``cfg``'s model and batches in the channels-last memory format (in place): adds
    :data:`CHANNELS_LAST_HOOK` to ``custom_hooks`` once."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == CHANNELS_LAST_HOOK for h in hooks):
        hooks.append(dict(type=CHANNELS_LAST_HOOK))
    cfg.custom_hooks = hooks


def training_precision(cfg: Config) -> dict:
    """What a config trains in: ``amp`` (the autocast dtype, or None for float32) and
    ``channels_last`` (bool)."""
    wrapper = cfg.get('optim_wrapper') or {}
    amp = None
    if wrapper.get('type') in ('AmpOptimWrapper', AMP_WRAPPER):
        amp = wrapper.get('dtype') or 'float16'
    hooks = cfg.get('custom_hooks') or []
    return dict(amp=amp, channels_last=any(h.get('type') == CHANNELS_LAST_HOOK for h in hooks))
