# Copyright (c) mmaffseg contributors. All rights reserved.
"""ChannelsLastHook: the model's 4-D weights and every batch the data preprocessor returns are
channels-last after ``before_run``, a training step and a test step compute the same numbers
as in the contiguous format, and a runner built with ``--channels-last``'s setting registers it
(through the train tool's option)."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from seg_batch import random_seg_batch

from mmaffseg.cli import load_config, prepare_train_cfg
from mmaffseg.engine import ChannelsLastHook, to_channels_last

pytestmark = pytest.mark.usefixtures('one_thread')

CONFIG = 'configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py'
SIZE = (32, 64)
CL = torch.channels_last


def _model():
    cfg = load_config(CONFIG)
    cfg.model.data_preprocessor.size = SIZE
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _losses(model, batch):
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return data['inputs'], total.detach(), grads


def test_to_channels_last_converts_4d_tensors_only():
    x = torch.randn(2, 3, 4, 5)
    out = to_channels_last(dict(inputs=x, data_samples=['s']))
    assert out['inputs'].is_contiguous(memory_format=CL) and out['data_samples'] == ['s']
    torch.testing.assert_close(out['inputs'], x, rtol=0, atol=0)  # same values
    y = torch.randn(3, 4, 5)
    assert to_channels_last(y) is y and to_channels_last([x])[0].is_contiguous(memory_format=CL)


def test_model_and_batches_in_channels_last_compute_the_same():
    batch = random_seg_batch(19, SIZE, n=2, seed=0)
    # eval mode (BN with running statistics): BN over the few values of a batch-2 training
    # step amplifies summation-order differences to ~1 % of some gradients
    model = _model().eval()
    inputs, ref_loss, ref_grads = _losses(model, batch)
    assert not inputs.is_contiguous(memory_format=CL)
    ChannelsLastHook().before_run(SimpleNamespace(model=model))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=CL) for c in convs)
    inputs, loss, grads = _losses(model, batch)
    assert inputs.is_contiguous(memory_format=CL)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-3,
                                   atol=1e-4 * float(ref_grads[name].abs().max()) + 1e-9,
                                   msg=name)
    with torch.no_grad():
        [pred] = model.test_step(dict(inputs=[batch['inputs'][0]],
                                      data_samples=[batch['data_samples'][0]]))
    assert pred.seg_logits.data.shape == (19, *SIZE)


def test_hook_leaves_tensors_that_are_not_4d():
    """A model with 5-D (Conv3d) weights: channels-last is a layout of 4-D tensors, so only
    those are converted (torch's model.to(memory_format=...) raised on the 5-D ones)."""
    model = torch.nn.Sequential(torch.nn.Conv3d(2, 3, 3), torch.nn.Conv2d(2, 3, 3))
    model.data_preprocessor = torch.nn.Identity()
    ChannelsLastHook().before_run(SimpleNamespace(model=model))
    assert model[1].weight.is_contiguous(memory_format=torch.channels_last)
    assert model[0].weight.is_contiguous()


def test_train_option_adds_the_hook_once(tmp_path):
    cfg = load_config(CONFIG)
    prepare_train_cfg(cfg, CONFIG, work_dir=str(tmp_path), channels_last=True)
    prepare_train_cfg(cfg, CONFIG, work_dir=str(tmp_path), channels_last=True)
    assert [h['type'] for h in cfg.custom_hooks].count('ChannelsLastHook') == 1
