# Copyright (c) mmaffseg contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F
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


def _naive_conv_bn_relu(x, module):
    """conv (its own padding and dilation) -> BatchNorm with running statistics -> ReLU."""
    conv, bn = module.conv, module.bn
    y = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation)
    y = (y - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(
        bn.running_var.view(1, -1, 1, 1) + bn.eps)
    return torch.relu(y * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1))


def test_embedding_equals_naive_recomputation_of_its_layers():
    # resize every input to the first one's size (bilinear), concat, two 3x3 conv-BN-ReLU, a
    # 1x1 projection to embed_dims; the same weights, BN in eval mode with non-trivial stats.
    torch.manual_seed(0)
    head = _head(norm_cfg=dict(type='BN'), channels=7)
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    head.eval()
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.randn(2, 4, 13, 7, generator=gen), torch.randn(2, 6, 5, 3, generator=gen)]
    with torch.no_grad():
        x = torch.cat([inputs[0], F.interpolate(inputs[1], (13, 7), mode='bilinear',
                                                align_corners=False)], dim=1)
        assert len(head.convs) == 2
        for module in head.convs:
            x = _naive_conv_bn_relu(x, module)
        expected = F.conv2d(x, head.conv_seg.weight, head.conv_seg.bias)
        torch.testing.assert_close(head(inputs), expected)
    assert expected.shape == (2, 5, 13, 7)
