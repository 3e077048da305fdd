# Copyright (c) mmaffseg contributors. All rights reserved.
"""mmengine's ``AmpOptimWrapper`` on every device, with a loss scaler only where one is needed.

mmengine's ``AmpOptimWrapper`` refuses to be built without a GPU (an assertion in its
constructor), although its autocast region (``mmengine.runner.amp.autocast``) runs on CPU in
bfloat16. :class:`AnyDeviceAmpOptimWrapper` is the same wrapper (a subclass: same
``optim_context``, ``backward``, ``step`` and checkpoint state) that also trains on CPU, so
``--amp`` behaves alike on every machine:

* ``dtype='bfloat16'``: CPU autocast, or a CUDA device that supports it. bfloat16 keeps
  float32's exponent range, so gradients do not underflow and ``loss_scale=dict(enabled=False)``
  (what :func:`mmaffseg.cli.use_amp` sets) switches the scaler off;
* ``dtype='float16'``: CUDA only (mmengine's CPU autocast is bfloat16 only), with a loss
  scaler, ``'dynamic'`` by default as mmseg's ``--amp``.

The scaler is ``torch.amp.GradScaler`` of the device the runner trains on (mmengine's
``get_device()``), and the autocast region is that of the device of the model's parameters
(mmengine's uses ``get_device()``, so a model kept on the CPU of a GPU machine would run
without autocast).
"""
from contextlib import contextmanager
from typing import Iterator, Optional, Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS

#: ``dtype`` values of the wrapper, as mmengine's ``AmpOptimWrapper`` spells them.
CAST_DTYPES = ('bfloat16', 'float16')


def grad_scaler(loss_scale: Union[str, float, dict], device: str) -> torch.amp.GradScaler:
    """The loss scaler of ``device`` for mmengine's ``loss_scale`` setting.

    Args:
        loss_scale (str | float | dict): ``'dynamic'`` (PyTorch's defaults), a float (the
            initial scale) or the scaler's keyword arguments (``dict(enabled=False)``: none).
        device (str): ``'cpu'``, ``'cuda'``...

    Returns:
        torch.amp.GradScaler: The scaler.
    """
    if loss_scale == 'dynamic':
        kwargs = {}
    elif isinstance(loss_scale, float):
        kwargs = dict(init_scale=loss_scale)
    elif isinstance(loss_scale, dict):
        kwargs = dict(loss_scale)
    else:
        raise TypeError(f"loss_scale must be 'dynamic', a float or a dict, got {loss_scale!r}")
    return torch.amp.GradScaler(device, **kwargs)


@OPTIM_WRAPPERS.register_module()
class AnyDeviceAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` that also trains on CPU (bfloat16 autocast); see the module docstring.

    Args:
        loss_scale (str | float | dict): See :func:`grad_scaler`. Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): The autocast dtype, one of :data:`CAST_DTYPES`.
            Defaults to None: bfloat16 on CPU, float16 on a GPU (autocast's defaults).
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``...).
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Optional[Union[str, torch.dtype]] = None,
                 **kwargs) -> None:
        # AmpOptimWrapper.__init__ asserts a GPU; what it sets up besides is done here
        OptimWrapper.__init__(self, **kwargs)
        device = get_device()
        if isinstance(dtype, torch.dtype):
            dtype = str(dtype).replace('torch.', '')
        if dtype is None:
            dtype = 'bfloat16' if device == 'cpu' else 'float16'
        if dtype not in CAST_DTYPES:
            raise ValueError(f'optim_wrapper.dtype must be one of {CAST_DTYPES}, got {dtype!r}')
        if device == 'cpu' and dtype != 'bfloat16':
            raise ValueError(f'optim_wrapper.dtype={dtype!r}: autocast on CPU runs bfloat16 '
                             "only; set dtype='bfloat16' (or train on a GPU)")
        self.cast_dtype = getattr(torch, dtype)
        self._scale_update_param = loss_scale if isinstance(loss_scale, float) else None
        self.loss_scaler = grad_scaler(loss_scale, device)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """OptimWrapper's context (gradient accumulation) with autocast to :attr:`cast_dtype`
        on the device of ``model``'s parameters."""
        from mmengine.runner.amp import autocast
        param = next(model.parameters(), None)
        device = param.device.type if param is not None else get_device()
        with OptimWrapper.optim_context(self, model), autocast(device_type=device,
                                                               dtype=self.cast_dtype):
            yield
