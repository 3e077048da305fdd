# Copyright (c) mmaffseg contributors. All rights reserved.
"""Non-finite (NaN/inf) weights and losses, found and named.

A model whose training diverged holds NaN or inf weights; tested, it still prints an mIoU (of
constant predictions), and a pseudo-label run computes labels from it. One check serves every
reader: :func:`check_finite_weights` raises a :class:`~mmaffseg.utils.CheckpointError` naming
the file and its first non-finite tensor (``tools/test.py``'s checkpoint, the pseudo-label
runner's CAM and AffinityNet checkpoints), and training's
:class:`~mmaffseg.engine.FiniteCheckHook` uses :func:`first_non_finite` on the model before it
saves a checkpoint and :func:`non_finite_terms` on every iteration's losses.
"""
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Tuple

import torch

from .safe_load import CheckpointError

#: The opt-out named in :func:`check_finite_weights`'s message by default.
ALLOW_FLAG = '--allow-nonfinite-weights'


class NonFiniteError(RuntimeError):
    """Training diverged: a loss or the weights to be saved are not finite (NaN or inf)."""


def describe_non_finite(name: str, tensor: torch.Tensor) -> str:
    """``'name (2 NaN, 1 inf of 64 values)'`` for a tensor with non-finite values."""
    values = tensor.detach()
    nan = int(torch.isnan(values).sum())
    inf = int(torch.isinf(values).sum())
    return f'{name} ({nan} NaN, {inf} inf of {values.numel()} values)'


def first_non_finite(named_tensors: Iterable[Tuple[str, Any]]) -> Optional[str]:
    """The first floating-point tensor with a NaN or inf, described, or None.

    Args:
        named_tensors (Iterable[tuple[str, Any]]): ``(name, value)`` pairs, e.g. a state dict's
            ``items()``; values that are not floating-point tensors are skipped.

    Returns:
        str | None: :func:`describe_non_finite` of the first offending tensor.
    """
    for name, value in named_tensors:
        if (isinstance(value, torch.Tensor) and value.layout == torch.strided
                and value.device.type != 'meta'
                and (value.is_floating_point() or value.is_complex())
                and not bool(torch.isfinite(value).all())):
            return describe_non_finite(name, value)
    return None


def named_tensors(value: Any, prefix: str) -> Iterator[Tuple[str, torch.Tensor]]:
    """Every tensor in nested dicts, lists and tuples (e.g. an optimizer's state dict), named
    by its dotted path under ``prefix``, for :func:`first_non_finite`."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from named_tensors(item, f'{prefix}.{key}')
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from named_tensors(item, f'{prefix}.{index}')


def check_finite_weights(checkpoint: Any, source: str, opt_out: str = ALLOW_FLAG) -> None:
    """Raise unless every floating-point weight of a checkpoint is finite.

    Args:
        checkpoint: A loaded checkpoint (weights under ``state_dict``) or a bare state dict.
        source (str): The checkpoint's file, for the message.
        opt_out (str): How the user loads such a checkpoint anyway, for the message.

    Raises:
        CheckpointError: Naming the file and the first non-finite tensor.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else {}
    bad = first_non_finite(state.items() if isinstance(state, Mapping) else ())
    if bad is not None:
        raise CheckpointError(
            source, f'holds non-finite weights: {bad} is the first; a model with NaN/inf '
            'weights predicts garbage (did its training diverge? train again, e.g. with a '
            f'lower learning rate). To use it anyway, pass {opt_out}')


def non_finite_terms(log_vars: Mapping[str, Any]) -> List[str]:
    """``'name=value'`` of every loss term (a key containing ``loss``, as mmengine sums them)
    that is not finite."""
    bad = []
    for name, value in log_vars.items():
        if 'loss' not in name:
            continue
        tensor = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value)
        if not bool(torch.isfinite(tensor).all()):
            bad.append(f'{name}={tensor.float().mean().item()}')
    return bad
