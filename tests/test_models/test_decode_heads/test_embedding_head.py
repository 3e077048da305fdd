# Copyright (c) mmaffseg contributors. All rights reserved.
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmaffseg  # noqa: F401


def _head(**kwargs):
    cfg = dict(type='EmbeddingHead', in_channels=[4, 6], in_index=[0, 1],
               input_transform='resize_concat', channels=8, embed_dims=5,
               loss_decode=dict(type='InstanceEmbeddingLoss', num_points=4))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_shapes_at_odd_sizes_and_default_dims():
    head = _head()
    out = head([torch.randn(2, 4, 13, 7), torch.randn(2, 6, 5, 3)])
    assert out.shape == (2, 5, 13, 7)
    assert MODELS.build(dict(type='EmbeddingHead', in_channels=3, channels=4)).embed_dims == 64


def test_loss_from_data_samples_reaches_every_parameter():
    head = _head()
    samples = []
    for _ in range(2):
        s = SegDataSample()
        inst = torch.zeros(1, 26, 14, dtype=torch.long)
        inst[0, 2:10, 3:9] = 1
        inst[0, 14:20, 1:5] = 2
        s.gt_instance_map = PixelData(data=inst[:, :24])  # unpadded: shorter than gt_sem_seg
        s.gt_sem_seg = PixelData(data=torch.zeros(1, 26, 14, dtype=torch.long))
        samples.append(s)
    out = head([torch.randn(2, 4, 13, 7), torch.randn(2, 6, 5, 3)])
    losses = head.loss_by_feat(out, samples)
    assert set(losses) == {'loss_emb'} and torch.isfinite(losses['loss_emb'])
    losses['loss_emb'].backward()
    assert all(p.grad is not None for p in head.parameters())


def test_errors():
    with pytest.raises(ValueError, match='embed_dims; remove'):
        _head(num_classes=3)
