# Copyright (c) mmaffseg contributors. All rights reserved.
"""HANetEncoderDecoder: positions to the neck in training, per-window positions in sliding
inference, whole == single-window slide, and the crop-relative fallback of a plain model."""
import copy
import warnings

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmaffseg.models.layers import HeightPositionalEncoding
from mmaffseg.models.segmentors.hanet_encoder_decoder import sliding_windows
from mmaffseg.ops import batch_row_positions

NORM = dict(type='BN', requires_grad=True)
HW = (40, 52)
MODEL = dict(
    type='HANetEncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1]),
    backbone=dict(type='ResNetV1c', depth=18, base_channels=4, stem_channels=8,
                  dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=NORM,
                  contract_dilation=False),
    neck=dict(type='HANetNeck', in_channels=[4, 8, 16, 32], pairs=[(2, 3)],
              hanet_cfg=dict(reduction=4), norm_cfg=NORM),
    decode_head=dict(type='HANetASPPHead', in_channels=32, in_index=3, channels=8,
                     c1_in_channels=4, c1_channels=4, lower_in_channels=16, lower_index=2,
                     dilations=(1, 2, 3), hanet_cfg=dict(reduction=4), num_classes=5,
                     norm_cfg=NORM, align_corners=True, dropout_ratio=0.0),
    auxiliary_head=dict(type='FCNHead', in_channels=16, in_index=2, channels=8, num_convs=1,
                        concat_input=False, num_classes=5, norm_cfg=NORM,
                        loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
    test_cfg=ConfigDict(mode='slide', crop_size=(24, 32), stride=(16, 20)))


def _build(**overrides):
    init_default_scope('mmseg')
    cfg = copy.deepcopy(MODEL)
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _samples(metas):
    samples = []
    for meta in metas:
        s = SegDataSample(metainfo=meta)
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, ) + HW))
        samples.append(s)
    return samples


def _spy_neck(model, monkeypatch):
    seen = []
    forward = model.neck.forward
    monkeypatch.setattr(model.neck, 'forward',
                        lambda x, rp=None: seen.append(rp) or forward(x, rp))
    return seen


def test_loss_feeds_neck_and_reaches_every_parameter(monkeypatch):
    model = _build().train()
    metas = [dict(ori_shape=(100, 130), img_shape=HW, pad_shape=HW, scale_factor=(1.0, 1.0),
                  crop_offset=(top, 3)) for top in (0, 60)]
    seen = _spy_neck(model, monkeypatch)
    losses = model.loss(torch.randn(2, 3, *HW), _samples(metas))
    assert torch.equal(seen[0], batch_row_positions(metas, HW[0]))
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_slide_gives_each_window_its_rows(monkeypatch):
    model = _build().eval()
    meta = dict(ori_shape=(80, 104), img_shape=HW, pad_shape=HW, scale_factor=(0.5, 0.5))
    seen = _spy_neck(model, monkeypatch)
    with torch.no_grad():
        results = model.predict(torch.randn(1, 3, *HW), _samples([meta]))
    full = batch_row_positions([meta], HW[0])
    windows = list(sliding_windows(*HW, (24, 32), (16, 20)))
    assert len(windows) == 4 and len(seen) == 4
    for (y1, y2, _, _), positions in zip(windows, seen):
        assert torch.equal(positions, full[:, y1:y2])
    assert results[0].seg_logits.data.shape == (5, 80, 104)  # resized back to ori_shape


def test_single_window_slide_equals_whole():
    model = _build().eval()
    meta = dict(ori_shape=HW, img_shape=HW, pad_shape=HW, scale_factor=(1.0, 1.0))
    inputs = torch.randn(1, 3, *HW)
    with torch.no_grad():
        model.test_cfg = ConfigDict(mode='slide', crop_size=(64, 64), stride=(32, 32))
        slide = model.inference(inputs, [dict(meta)])
        model.test_cfg = ConfigDict(mode='whole')
        whole = model.inference(inputs, [dict(meta)])
        tensor = model._forward(inputs, _samples([meta]))
    torch.testing.assert_close(slide, whole)
    assert tensor.shape == (1, 5, 10, 13)


def test_sliding_windows_cover_the_image():
    count = torch.zeros(37, 50)
    for y1, y2, x1, x2 in sliding_windows(37, 50, (16, 20), (10, 12)):
        assert y2 - y1 == 16 and x2 - x1 == 20
        count[y1:y2, x1:x2] += 1
    assert (count > 0).all()
    assert list(sliding_windows(10, 12, (16, 20), (8, 8))) == [(0, 10, 0, 12)]


def test_plain_encoder_decoder_slide_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(HeightPositionalEncoding, '_warned_relative', False)
    model = _build(type='EncoderDecoder', neck=None).eval()
    meta = dict(ori_shape=HW, img_shape=HW, pad_shape=HW, scale_factor=(1.0, 1.0))
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model.predict(torch.randn(1, 3, *HW), _samples([meta]))
    relative = [w for w in caught if 'no absolute row positions' in str(w.message)]
    assert len(relative) == 1  # four windows, eight HANet calls each, one warning
    # the same model with the HANet segmentor knows every window's rows: no warning
    monkeypatch.setattr(HeightPositionalEncoding, '_warned_relative', False)
    model = _build(neck=None).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings('error', message='.*no absolute row positions')
        model.predict(torch.randn(1, 3, *HW), _samples([meta]))


@pytest.mark.parametrize('with_offset', [True, False])
def test_training_crop_without_offset_falls_back(monkeypatch, with_offset):
    monkeypatch.setattr(HeightPositionalEncoding, '_warned_relative', False)
    model = _build().train()
    meta = dict(ori_shape=(100, 130), img_shape=HW, pad_shape=HW, scale_factor=(1.0, 1.0))
    if with_offset:
        meta['crop_offset'] = (10, 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model.loss(torch.randn(2, 3, *HW), _samples([meta, meta]))
    relative = [w for w in caught if 'no absolute row positions' in str(w.message)]
    assert len(relative) == (0 if with_offset else 1)
