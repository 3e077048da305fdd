# Copyright (c) mmaffseg contributors. All rights reserved.
import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import TRANSFORMS

from mmaffseg.datasets import decode_cityscapes_instance_ids
from mmaffseg.structures import segment_labels


def test_decode_cityscapes_encoding():
    raw = np.array([[7, 7, 26000, 26000, 0],
                    [26001, 26001, 24003, 26, 4],
                    [21, 21, 24003, 26, 11]], np.uint16)
    seg = np.array([[0, 0, 13, 13, 255],
                    [13, 13, 11, 13, 255],
                    [8, 255, 11, 13, 2]], np.uint8)
    out = decode_cityscapes_instance_ids(raw, seg)
    # instances numbered by raw id: 24003 -> 1, 26000 -> 2, 26001 -> 3; stuff and crowd -> 0
    expected = np.array([[0, 0, 2, 2, 255],
                         [3, 3, 1, 0, 255],
                         [0, 255, 1, 0, 0]], np.int32)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.int32
    crowd_void = decode_cityscapes_instance_ids(raw, seg, crowd_as_ignore=True)
    assert (crowd_void[1:, 3] == 255).all() and crowd_void[0, 0] == 0
    # without a semantic map only raw void labelIds (0..6) are void
    np.testing.assert_array_equal(decode_cityscapes_instance_ids(raw)[:, 4], [255, 255, 0])


def test_decode_never_hands_out_the_ignore_value():
    raw = (26000 + np.arange(300)).reshape(15, 20)
    out = decode_cityscapes_instance_ids(raw)
    assert 255 not in out and len(np.unique(out)) == 300 and out.max() == 301


def test_segment_labels_are_class_agnostic():
    sem = torch.tensor([[0, 0, 13, 13], [13, 13, 255, 8]])
    inst = torch.tensor([[0, 0, 1, 1], [2, 2, 0, 255]])
    out = segment_labels(sem, inst)
    assert out[0, 0] == out[0, 1] == 0  # stuff: its class
    assert out[0, 2] == out[0, 3] and out[1, 0] == out[1, 1] and out[0, 2] != out[1, 0]
    assert out[0, 2] not in (0, 13, 255)
    assert out[1, 2] == 255 and out[1, 3] == 255  # void in either map
    assert torch.equal(segment_labels(sem), sem)
    with pytest.raises(ValueError, match='same shape'):
        segment_labels(sem, inst[:1])


# A 24x40 scene: vertical stripes, each an instance (or stuff) with a known class.
_CLASS_OF_STRIPE = (0, 13, 13, 11, 2, 13, 0, 11)  # trainIds; 13 car, 11 person are things
_LABEL_ID = {0: 7, 2: 11, 11: 24, 13: 26}


def _write_scene(root, h=24, w=40, inst_shape=None):
    stripe = np.arange(w) * len(_CLASS_OF_STRIPE) // w
    seg = np.tile(np.array(_CLASS_OF_STRIPE, np.uint8)[stripe], (h, 1))
    raw = np.zeros((h, w), np.uint16)
    for s, c in enumerate(_CLASS_OF_STRIPE):
        cols = stripe == s
        raw[:, cols] = _LABEL_ID[c] * 1000 + s if c in (11, 13) else _LABEL_ID[c]
    seg[:3, :5] = 255
    raw[:3, :5] = 0
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    stem = root / 'frankfurt_000000_000294'
    cv2.imwrite(f'{stem}_leftImg8bit.png', img)
    cv2.imwrite(f'{stem}_gtFine_labelTrainIds.png', seg)
    if inst_shape is not None:
        raw = cv2.resize(raw, inst_shape[::-1], interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(f'{stem}_gtFine_instanceIds.png', raw)
    return f'{stem}_leftImg8bit.png', f'{stem}_gtFine_labelTrainIds.png'


def _load(img_path, seg_path, *extra):
    init_default_scope('mmseg')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadCheckedAnnotations'),
                dict(type='LoadInstanceMap'), *extra]
    results = dict(img_path=img_path, seg_map_path=seg_path, seg_fields=[],
                   reduce_zero_label=False)
    for t in pipeline:
        results = TRANSFORMS.build(t)(results)
    return results


def _assert_consistent(results):
    """Every instance keeps one class, and stuff/void pixels stay where the classes say."""
    seg, inst = results['gt_seg_map'], results['gt_instance_map']
    assert seg.shape == inst.shape == results['img'].shape[:2]
    assert ((seg == 255) == (inst == 255)).all()
    things = np.isin(seg, (11, 13))
    assert (inst[things] > 0).all() and (inst[~things & (seg != 255)] == 0).all()
    for k in np.unique(inst[things]):
        assert len(np.unique(seg[inst == k])) == 1


def test_load_instance_map(tmp_path):
    results = _load(*_write_scene(tmp_path))
    inst = results['gt_instance_map']
    assert inst.dtype == np.int32 and 'gt_instance_map' in results['seg_fields']
    assert sorted(np.unique(inst).tolist()) == [0, 1, 2, 3, 4, 5, 255]  # five thing stripes
    _assert_consistent(results)


def test_flip_and_crop_carry_the_instance_map(tmp_path):
    paths = _write_scene(tmp_path)
    ref = _load(*paths)
    flipped = _load(*paths, dict(type='RandomFlip', prob=1.0))
    np.testing.assert_array_equal(flipped['gt_instance_map'], ref['gt_instance_map'][:, ::-1])
    np.testing.assert_array_equal(flipped['gt_seg_map'], ref['gt_seg_map'][:, ::-1])
    np.random.seed(0)
    for _ in range(5):
        out = _load(*paths,
                    dict(type='RandomResize', scale=(40, 24), ratio_range=(0.5, 2.0),
                         keep_ratio=True),
                    dict(type='RandomCrop', crop_size=(16, 16)),
                    dict(type='RandomFlip', prob=0.5))
        assert out['gt_instance_map'].shape == (16, 16)
        _assert_consistent(out)
        assert out['gt_instance_map'].dtype == np.int32


def test_pack_seg_instance_inputs(tmp_path):
    results = _load(*_write_scene(tmp_path), dict(type='PackSegInstanceInputs'))
    sample = results['data_samples']
    assert sample.gt_instance_map.data.shape == (1, 24, 40)
    assert sample.gt_instance_map.data.dtype == torch.int64
    assert sample.gt_sem_seg.data.shape == (1, 24, 40)
    plain = TRANSFORMS.build(dict(type='PackSegInstanceInputs'))(
        dict(img=np.zeros((4, 5, 3), np.uint8), gt_seg_map=np.zeros((4, 5), np.uint8)))
    assert 'gt_instance_map' not in plain['data_samples']


def test_errors_name_the_file(tmp_path):
    img_path, seg_path = _write_scene(tmp_path, inst_shape=(12, 20))
    with pytest.raises(ValueError, match=r'instanceIds.png is 12x20 but .* is 24x40'):
        _load(img_path, seg_path)
    (tmp_path / 'frankfurt_000000_000294_gtFine_instanceIds.png').unlink()
    with pytest.raises(FileNotFoundError,
                       match='instance map .*frankfurt_000000_000294_gtFine_instanceIds.png'):
        _load(img_path, seg_path)
    t = TRANSFORMS.build(dict(type='LoadInstanceMap'))
    with pytest.raises(ValueError, match="does not end with seg_map_suffix"):
        t(dict(seg_map_path='a/b_label.png'))
