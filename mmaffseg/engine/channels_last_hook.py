# Copyright (c) mmaffseg contributors. All rights reserved.
"""Run a model in the channels-last memory format (NHWC strides), training and testing alike.

Convolutions on GPUs (cuDNN, notably with tensor cores under mixed precision) and on CPU
(oneDNN) are faster on channels-last tensors; a convolution whose input or weight is
channels-last returns a channels-last output, and element-wise layers keep the format, so
converting the weights and the batch once is enough for the network to run in it.
:class:`ChannelsLastHook` (``--channels-last`` of ``tools/train.py`` and
``tools/benchmark_suite.py``):

* before the run, converts the model's 4-D parameters and buffers to channels-last
  (``Module.to(memory_format=torch.channels_last)``; the values are unchanged);
* converts the batch the data preprocessor returns (its 4-D ``inputs``) on every step of
  training, validation and testing (a forward hook on ``model.data_preprocessor``).

Nothing else changes: the same values in other strides, so the results differ by floating-point
summation order only. Layers that need contiguous tensors (``view``) call ``contiguous()``
or ``reshape`` themselves. In a distributed run the model is already wrapped when the hook
runs: PyTorch's DDP lays its gradient buckets out again after the first iteration, so only
that iteration copies the gradients into buckets of the former strides.
"""
from typing import Any

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


def to_channels_last(value: Any) -> Any:
    """4-D tensors -> channels-last, also in the ``inputs`` of a data batch (dict) or a list."""
    if isinstance(value, torch.Tensor):
        return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value
    if isinstance(value, dict) and 'inputs' in value:
        return {**value, 'inputs': to_channels_last(value['inputs'])}
    if isinstance(value, (list, tuple)):
        return type(value)(to_channels_last(v) for v in value)
    return value


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Convert the model and every batch to channels-last (see the module docstring)."""

    priority = 'VERY_HIGH'  # before the other hooks see the model

    def __init__(self) -> None:
        self._handle = None

    def before_run(self, runner) -> None:
        """Convert the model's weights; route the data preprocessor's output through
        :func:`to_channels_last`."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.dim() == 4:  # channels-last is a layout of 4-D tensors only
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
        if self._handle is None:  # kept after the run: a later test_step is converted too
            self._handle = model.data_preprocessor.register_forward_hook(
                lambda module, args, output: to_channels_last(output))
