# Copyright (c) mmaffseg contributors. All rights reserved.
"""Run numerically sensitive code in float32 with autocast switched off.

Mixed-precision training (``torch.autocast``, mmengine's ``AmpOptimWrapper``, ``--amp``) runs
matrix products and convolutions in float16 or bfloat16. That is right for the network and wrong
for a few computations in this package, which need float32 whatever the surrounding precision:

- ``sigmoid``/``log``/``exp``/``softplus`` near saturation (the context prior loss: a float16
  sigmoid rounds 0.9997 to 1 and the BCE gradient explodes);
- pairwise distances by the expansion ``|x|^2 + |y|^2 - 2 <x, y>`` (float16 cancellation errors
  of ~0.4 at ``|x|^2 ~ 300``, products above 65504 overflow to inf);
- sums over many pairs or pixels (N^2 similarity differences, mask IoU counts > 65504).

:func:`float32_math` wraps such a function: inside it autocast is disabled on every device where
it is active, and float16/bfloat16 tensor arguments are upcast to float32 (float32 and float64
arguments, integer and bool tensors are passed unchanged). Gradients flow back through the upcast
to the caller's dtype. The result stays float32, the dtype autocast itself gives losses and
the one mmengine's loss parsing and ``GradScaler`` expect.
"""
import functools
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator, TypeVar

import torch

#: Devices whose autocast state :func:`autocast_disabled` switches off when active.
AUTOCAST_DEVICES = ('cpu', 'cuda')
_HALF_DTYPES = (torch.float16, torch.bfloat16)

F = TypeVar('F', bound=Callable[..., Any])


@contextmanager
def autocast_disabled() -> Iterator[None]:
    """Context in which autocast is off on every device where it was on."""
    with ExitStack() as stack:
        for device in AUTOCAST_DEVICES:
            if torch.is_autocast_enabled(device):
                stack.enter_context(torch.autocast(device_type=device, enabled=False))
        yield


def upcast(value: Any) -> Any:
    """float16/bfloat16 tensors (also inside lists, tuples and dicts) -> float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in _HALF_DTYPES else value
    if isinstance(value, tuple) and hasattr(value, '_fields'):  # namedtuple
        return type(value)(*(upcast(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(upcast(v) for v in value)
    if isinstance(value, dict):
        return {k: upcast(v) for k, v in value.items()}
    return value


def float32_math(fn: F) -> F:
    """Decorator: ``fn`` runs with autocast off and its half-precision tensor args in float32.

    Works on functions and methods (``self`` passes through unchanged).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with autocast_disabled():
            return fn(*upcast(args), **upcast(kwargs))

    return wrapper  # type: ignore[return-value]
