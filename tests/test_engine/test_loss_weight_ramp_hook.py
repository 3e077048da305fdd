# Copyright (c) mmaffseg contributors. All rights reserved.
from types import SimpleNamespace

import pytest
import torch.nn as nn
from mmseg.registry import HOOKS

from mmaffseg.engine import LossWeightRampHook, ramp_value


def test_ramp_value():
    assert ramp_value(0, 0.0, 0.2, 10, 20) == 0.0
    assert ramp_value(15, 0.0, 0.2, 10, 20) == pytest.approx(0.1)
    assert ramp_value(25, 0.0, 0.2, 10, 20) == 0.2
    assert ramp_value(15, 0.0, 0.2, 10, 20, 'cosine') == pytest.approx(0.1)
    assert ramp_value(12, 0.0, 0.2, 10, 20, 'cosine') < ramp_value(12, 0.0, 0.2, 10, 20)
    assert ramp_value(3, 1.0, 2.0, 5, 5) == 1.0 and ramp_value(5, 1.0, 2.0, 5, 5) == 2.0


def test_hook_sets_the_attribute_of_the_model():
    model = nn.Module()
    model.cls_loss_weight = 0.0
    model.head = nn.Module()
    model.head.weight_value = 1.0
    hook = HOOKS.build(dict(type='LossWeightRampHook', begin=0, end=100))
    runner = SimpleNamespace(model=model, iter=50)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    assert model.cls_loss_weight == pytest.approx(0.1)
    nested = LossWeightRampHook('head.weight_value', 1.0, 3.0, 0, 10)
    nested.before_train_iter(SimpleNamespace(model=model, iter=10), 0)
    assert model.head.weight_value == 3.0


def test_errors():
    with pytest.raises(AttributeError, match='has no attribute'):
        LossWeightRampHook('missing').before_train(SimpleNamespace(model=nn.Module(), iter=0))
    with pytest.raises(ValueError, match='begin <= end'):
        LossWeightRampHook(begin=5, end=2)
    with pytest.raises(ValueError, match='shape must be one of'):
        LossWeightRampHook(shape='exp')
