# Copyright (c) mmaffseg contributors. All rights reserved.
"""Every model family's quick-start model under CPU ``torch.autocast`` (bfloat16 and float16):
one forward + backward on a small random batch gives finite losses and gradients and losses
within a stated tolerance of the float32 ones; and the same step with
``torch.set_default_device('meta')`` (real CPU tensors) finds every tensor factory call that
forgot ``device=`` (it would put a tensor on the CPU while the model runs on a GPU).

The batches are two 32 x 32 images with labels in 8 x 8 blocks; float16 convolutions on CPU are slow
(reference kernels), which the small size keeps to a few seconds for the whole file.
"""
import logging

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from quickstart_families import FAMILIES, family_config
from seg_batch import random_seg_batch

from mmaffseg.cli import load_config

pytestmark = pytest.mark.usefixtures('one_thread')

SIZE = (32, 32)
#: Relative tolerance of every loss item against float32 (plus an absolute 0.02 for items
#: near 0): bfloat16 keeps 8 mantissa bits, float16 11.
RTOL = {torch.bfloat16: 0.05, torch.float16: 0.01}
ATOL = 0.02


def _build(family: str) -> torch.nn.Module:
    cfg = load_config(family_config(family))
    init_default_scope('mmseg')
    cfg.model.data_preprocessor.size = SIZE
    head = cfg.model.decode_head
    if head.type == 'CPHead':
        head.prior_size = (SIZE[0] // 8, SIZE[1] // 8)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        model.init_weights()  # the configs' initialisation: activations of training scale
    finally:
        logger.setLevel(level)
    return model.train()


def _num_classes(model: torch.nn.Module) -> int:
    return model.decode_head.num_classes


def _batch(model: torch.nn.Module, seed: int = 0) -> dict:
    """Two images; semantic labels, instance ids and image-level labels in 8 x 8 blocks."""
    num_classes = _num_classes(model)
    batch = random_seg_batch(num_classes, SIZE, n=2, seed=seed)
    rng = np.random.default_rng(seed)
    blocks = (SIZE[0] // 8, SIZE[1] // 8)
    for sample in batch['data_samples']:
        sem = rng.integers(0, num_classes, blocks)
        inst = rng.integers(1, 5, blocks) * (sem % 2)  # instances on odd classes, 0 elsewhere
        up = np.ones((8, 8), dtype=np.int64)
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(np.kron(sem, up))[None])
        sample.gt_instance_map = PixelData(data=torch.from_numpy(np.kron(inst, up))[None])
        present = np.zeros(num_classes, dtype=np.float32)
        present[np.unique(sem)] = 1
        sample.set_metainfo(dict(gt_class_labels=present))
    return batch


def _loss_step(model: torch.nn.Module, batch: dict, dtype=None):
    """Losses (dict of floats) and parameter gradients of one forward + backward."""
    model.zero_grad(set_to_none=True)
    data = model.data_preprocessor(batch, True)
    torch.manual_seed(1)  # the same point sampling and dropout in every precision
    with torch.autocast('cpu', dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return {k: float(v) for k, v in losses.items() if 'loss' in k}, grads


@pytest.fixture(scope='module', params=sorted(FAMILIES))
def family_model(request):
    """(family, model, batch) built once per family for all precisions."""
    model = _build(request.param)
    batch = _batch(model)
    return request.param, model, batch


@pytest.fixture(scope='module')
def float32_step(family_model):
    family, model, batch = family_model
    return _loss_step(model, batch)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=str)
def test_autocast_step_is_finite_and_close_to_float32(family_model, float32_step, dtype):
    family, model, batch = family_model
    ref_losses, ref_grads = float32_step
    losses, grads = _loss_step(model, batch, dtype)
    assert losses.keys() == ref_losses.keys()
    for name, value in losses.items():
        assert np.isfinite(value), f'{family}: {name} = {value} under {dtype}'
        assert value == pytest.approx(ref_losses[name], rel=RTOL[dtype], abs=ATOL), \
            f'{family}: {name} = {value} under {dtype}, {ref_losses[name]} in float32'
    assert grads.keys() == ref_grads.keys(), f'{family}: different parameters get gradients'
    for name, grad in grads.items():
        assert torch.isfinite(grad).all(), f'{family}: non-finite gradient of {name} ({dtype})'


def test_no_tensor_factory_without_device(family_model, float32_step):
    """Forward + backward with the default device set to 'meta': a tensor made without
    ``device=`` lands on 'meta' and meets the real CPU tensors, which raises."""
    family, model, batch = family_model
    data = model.data_preprocessor(batch, True)
    torch.manual_seed(1)
    torch.set_default_device('meta')
    try:
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        total.backward()
    finally:
        torch.set_default_device(None)
    assert total.device.type == 'cpu'
    assert float(total) == pytest.approx(sum(float32_step[0].values()), rel=1e-4)
    model.zero_grad(set_to_none=True)
