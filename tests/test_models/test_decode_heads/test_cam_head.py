# Copyright (c) mmaffseg contributors. All rights reserved.
"""CAM head and CAMClassifier: logits/CAM relation, multi-label loss, labels, any backbone."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmaffseg  # noqa: F401
from mmaffseg.models.decode_heads import CAMHead

# A ResNet-18 at output stride 8, to show the pipeline works with any mmseg backbone.
R18_D8 = dict(type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
              dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=dict(type='BN'),
              contract_dilation=True)


def samples(labels, in_metainfo=True, shape=(32, 40)):
    out = []
    for label in labels:
        meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape)
        if in_metainfo:
            meta['gt_class_labels'] = np.asarray(label, dtype=np.float32)
        sample = SegDataSample(metainfo=meta)
        if not in_metainfo:
            sample.gt_class_labels = torch.tensor(label, dtype=torch.float32)
        sample.gt_sem_seg = PixelData(data=torch.zeros(1, *shape, dtype=torch.long))
        out.append(sample)
    return out


def head(**kwargs):
    cfg = dict(in_channels=16, channels=8, num_classes=5, norm_cfg=dict(type='BN'))
    cfg.update(kwargs)
    torch.manual_seed(0)
    return CAMHead(**cfg)


def test_logits_are_pooled_cam_scores_and_cam_is_relu():
    h = head().eval()
    x = [torch.randn(2, 16, 7, 9)]
    logits, cam = h(x), h.forward_cam(x)
    assert logits.shape == (2, 5) and cam.shape == (2, 5, 7, 9)
    scores = torch.einsum('bchw,kc->bkhw', h._forward_feature(x), h.conv_seg.weight[:, :, 0, 0])
    torch.testing.assert_close(logits, scores.mean(dim=(2, 3)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cam, scores.clamp(min=0), rtol=1e-5, atol=1e-6)
    assert h.conv_seg.bias is None


def test_num_convs_zero_reads_features_directly():
    h = head(channels=16, num_convs=0).eval()
    x = [torch.randn(1, 16, 3, 4)]
    torch.testing.assert_close(h.forward_cam(x), F.relu(F.conv2d(x[0], h.conv_seg.weight)))
    with pytest.raises(ValueError, match='channels must equal in_channels=16'):
        head(num_convs=0)


@pytest.mark.parametrize('in_metainfo', [True, False])
def test_loss_is_multilabel_soft_margin_and_reaches_all_params(in_metainfo):
    h = head(dropout_ratio=0).train()
    labels = [[1, 0, 0, 1, 0], [0, 0, 1, 0, 0]]
    x = [torch.randn(2, 16, 5, 6)]
    losses = h.loss(x, samples(labels, in_metainfo), None)
    assert set(losses) == {'loss_cls'}
    expected = F.multilabel_soft_margin_loss(h(x), torch.tensor(labels, dtype=torch.float32))
    torch.testing.assert_close(losses['loss_cls'], expected)
    losses['loss_cls'].backward()
    for name, p in h.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_label_errors():
    h = head()
    x = [torch.randn(1, 16, 3, 3)]
    bare = SegDataSample(metainfo=dict(img_shape=(3, 3)))
    with pytest.raises(KeyError, match='no gt_class_labels'):
        h.loss(x, [bare], None)
    with pytest.raises(ValueError, match='num_classes=5 entries, got 3'):
        h.loss(x, samples([[1, 0, 1]]), None)


@pytest.fixture(scope='module')
def classifier():
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='CAMClassifier', backbone=R18_D8,
        decode_head=dict(type='CAMHead', in_channels=512, channels=32, num_classes=4,
                         norm_cfg=dict(type='BN')),
        test_cfg=ConfigDict(mode='whole', bg_score=0.2)))


def test_classifier_trains_on_any_backbone(classifier):
    classifier.train()
    data = samples([[1, 0, 0, 1], [0, 1, 0, 0]])
    losses = classifier.loss(torch.randn(2, 3, 32, 40), data)
    assert set(losses) == {'decode.loss_cls'}
    losses['decode.loss_cls'].backward()
    assert all(p.grad is not None for p in classifier.parameters() if p.requires_grad)
    classifier.zero_grad()
    assert classifier.forward_cam(torch.randn(1, 3, 33, 41)).shape == (1, 4, 5, 6)


def test_classifier_predicts_present_classes_or_background(classifier):
    classifier.eval()
    data = samples([[0, 1, 0, 1], [0, 0, 1, 0]], shape=(33, 41))
    with torch.no_grad():
        out = classifier.predict(torch.randn(2, 3, 33, 41), data)
    for sample, allowed in zip(out, ({0, 2, 4}, {0, 3})):
        pred, scores = sample.pred_sem_seg.data, sample.seg_logits.data
        assert pred.shape == (1, 33, 41) and scores.shape == (5, 33, 41)
        assert set(pred.unique().tolist()) <= allowed
        torch.testing.assert_close(scores[0], torch.full_like(scores[0], 0.2))
        assert scores[1:].max() <= 1
    with torch.no_grad():  # without image labels every class may appear
        out = classifier.predict(torch.randn(1, 3, 24, 24))
    assert out[0].seg_logits.data.shape == (5, 24, 24)
