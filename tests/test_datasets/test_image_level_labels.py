# Copyright (c) mmaffseg contributors. All rights reserved.
"""Image-level labels (from masks and label files) and the WSSS view of the synthetic data."""
import importlib.util
import json
import os

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmaffseg  # noqa: F401
from mmaffseg.datasets import (
    LoadImageLevelLabels,
    class_labels_from_seg_map,
    read_class_label_file,
    wsss_label_map,
)
from mmaffseg.datasets.cityscapes_labels import THING_TRAIN_IDS
from mmaffseg.datasets.image_level_labels import write_class_label_file
from mmaffseg.datasets.psa_cls_labels import UntrustedPickleError, read_psa_cls_labels

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERTER = os.path.join(REPO, 'tools', 'dataset_converters', 'psa_cls_labels.py')


def _converter():
    """The conversion tool as a module (its main(argv) is what the command line runs)."""
    spec = importlib.util.spec_from_file_location('psa_cls_labels_tool', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

SEG = np.array([[0, 0, 3, 3],
                [0, 255, 3, 1],
                [5, 5, 5, 255]], dtype=np.uint8)


def test_labels_from_seg_map():
    # classes k <-> labels k + 1; 0 background and 255 ignored
    np.testing.assert_array_equal(class_labels_from_seg_map(SEG, 5), [1, 0, 1, 0, 1])
    # min_pixels: label 1 has one pixel, label 3 three, label 5 three
    np.testing.assert_array_equal(class_labels_from_seg_map(SEG, 5, min_pixels=3),
                                  [0, 0, 1, 0, 1])
    # class_offset 0: every label is a class (no background)
    np.testing.assert_array_equal(class_labels_from_seg_map(SEG, 6, class_offset=0),
                                  [1, 1, 0, 1, 0, 1])
    assert class_labels_from_seg_map(SEG, 5).dtype == np.float32
    with pytest.raises(ValueError, match=r'labels \[5\] outside'):
        class_labels_from_seg_map(SEG, 4)


def test_label_files_agree(tmp_path):
    expected = {'a': [1, 0, 0, 1], 'b': [0, 0, 0, 0], 'c': [0, 1, 1, 0]}
    npz = tmp_path / 'labels.npz'
    np.savez(npz, **{k: np.asarray(v, np.float32) for k, v in expected.items()})
    js = tmp_path / 'labels.json'
    js.write_text(json.dumps({k: np.flatnonzero(v).tolist() for k, v in expected.items()}))
    txt = tmp_path / 'labels.txt'
    txt.write_text(''.join(f'{k} ' + ' '.join(map(str, np.flatnonzero(v))) + '\n'
                           for k, v in expected.items()))
    for path in (npz, js, txt):
        table = read_class_label_file(str(path), 4)
        assert set(table) == set(expected), path
        for k, v in expected.items():
            np.testing.assert_array_equal(table[k], v)


def test_label_file_errors(tmp_path):
    js = tmp_path / 'bad.json'
    js.write_text(json.dumps({'a': [0, 7]}))
    with pytest.raises(ValueError, match=r'expected 0-based indices in 0\.\.3'):
        read_class_label_file(str(js), 4)
    npz = tmp_path / 'bad.npz'
    np.savez(npz, a=np.ones(3, np.float32))
    with pytest.raises(ValueError, match='3-entry label vector, expected num_classes=4'):
        read_class_label_file(str(npz), 4)
    plain = tmp_path / 'plain.npy'
    np.save(plain, np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match='plain array without image names'):
        read_class_label_file(str(plain), 4)
    csv = tmp_path / 'labels.csv'
    csv.write_text('a,0\n')
    with pytest.raises(ValueError, match='unsupported image-level label file'):
        read_class_label_file(str(csv), 4)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_class_label_file(str(tmp_path / 'missing.json'), 4)


def test_transform_from_file_and_mask(tmp_path):
    js = tmp_path / 'labels.json'
    js.write_text(json.dumps({'2007_000032': [0, 14]}))
    t = LoadImageLevelLabels(num_classes=20, label_file=str(js))
    out = t(dict(img_path='/voc/JPEGImages/2007_000032.jpg'))
    assert out['gt_class_labels'].tolist() == [1.0] + [0.0] * 13 + [1.0] + [0.0] * 5
    with pytest.raises(KeyError, match="'2007_000033' is not in"):
        t(dict(img_path='/voc/JPEGImages/2007_000033.jpg'))
    t = LoadImageLevelLabels(num_classes=5)
    np.testing.assert_array_equal(t(dict(gt_seg_map=SEG))['gt_class_labels'], [1, 0, 1, 0, 1])
    with pytest.raises(KeyError, match='put it after LoadAnnotations'):
        t(dict(img_path='x.jpg', seg_map_path='x.png'))  # a label map, but not loaded yet


def test_wsss_label_map():
    mapping = wsss_label_map()
    assert [mapping[t] for t in THING_TRAIN_IDS] == list(range(1, 9))
    assert all(mapping[t] == 0 for t in range(11))
    assert 255 not in mapping


def test_synthetic_wsss_dataset(tiny_synthetic_root):
    init_default_scope('mmseg')
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadCheckedAnnotations'),
        dict(type='LoadImageLevelLabels', num_classes=8, min_pixels=1),
        dict(type='PackSegInputs', meta_keys=('img_path', 'seg_map_path', 'gt_class_labels'))
    ]
    common = dict(type='SyntheticCityscapesWSSSDataset', data_root=tiny_synthetic_root,
                  num_train=6, num_val=3, image_size=(64, 128),
                  data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                  pipeline=pipeline)
    ds = DATASETS.build(common)
    raw = DATASETS.build(dict(common, map_labels=False, pipeline=pipeline[:2] + pipeline[3:]))
    assert len(ds) == 6 and ds.metainfo['classes'][0] == 'background'
    assert len(ds.metainfo['classes']) == len(ds.metainfo['palette']) == 9
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        train_ids = cv2.imread(sample.seg_map_path, cv2.IMREAD_UNCHANGED)
        expected = np.full_like(train_ids, 255)
        expected[train_ids < 11] = 0
        for k, t in enumerate(THING_TRAIN_IDS):
            expected[train_ids == t] = k + 1
        np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), expected)
        present = [k for k in range(8) if (expected == k + 1).any()]
        assert np.flatnonzero(sample.gt_class_labels).tolist() == present
        # map_labels=False reads the file as it is (for pseudo labels)
        np.testing.assert_array_equal(raw[i]['data_samples'].gt_sem_seg.data[0].numpy(),
                                      train_ids)


class _Payload:
    """Unpickling this creates ``path`` (stands for any code a pickle can run)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def _pickled_labels(path, marker):
    """A .npy like PSA's cls_labels.npy (a pickled dict) carrying a payload."""
    table = {'2007_000032': np.eye(20, dtype=np.float32)[0], 'evil': _Payload(str(marker))}
    np.save(path, np.array(table, dtype=object), allow_pickle=True)


def test_pickled_label_file_is_never_unpickled(tmp_path):
    npy, marker = tmp_path / 'cls_labels.npy', tmp_path / 'PWNED'
    _pickled_labels(npy, marker)
    t = LoadImageLevelLabels(num_classes=20, label_file=str(npy))
    with pytest.raises(ValueError) as info:
        t(dict(img_path='/voc/JPEGImages/2007_000032.jpg'))
    message = str(info.value)
    assert str(npy) in message and 'tools/dataset_converters/psa_cls_labels.py' in message
    assert not marker.exists()
    # an .npz with an object array is refused too, without unpickling
    npz = tmp_path / 'labels.npz'
    np.savez(npz, a=np.array([_Payload(str(marker))], dtype=object))
    with pytest.raises(ValueError, match='never unpickled'):
        read_class_label_file(str(npz), 20)
    assert not marker.exists()


def test_converter_refuses_a_payload_without_running_it(tmp_path, capsys):
    npy, marker = tmp_path / 'cls_labels.npy', tmp_path / 'PWNED'
    _pickled_labels(npy, marker)
    with pytest.raises(UntrustedPickleError, match='--trust'):
        read_psa_cls_labels(str(npy))
    assert _converter().main([str(npy), str(tmp_path / 'out.json')]) == 2
    assert '--trust' in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / 'out.json').exists()


@pytest.mark.parametrize('ext', ['.json', '.npz'])
def test_converter_round_trips_official_style_labels(tmp_path, ext, capsys):
    """A dict saved exactly as PSA's make_cls_labels.py saves it (np.save of a dict of
    float32 20-vectors) converts, and LoadImageLevelLabels reads the same vectors back."""
    rng = np.random.default_rng(0)
    names = [f'2007_{i:06d}' for i in range(40)] + ['2011_003276']
    table = {n: (rng.random(20) < 0.15).astype(np.float32) for n in names}
    npy = tmp_path / 'cls_labels.npy'
    np.save(npy, table, allow_pickle=True)
    out = tmp_path / f'cls_labels{ext}'
    assert _converter().main([str(npy), str(out)]) == 0
    assert f'{len(names)} images' in capsys.readouterr().out
    t = LoadImageLevelLabels(num_classes=20, label_file=str(out))
    for name, vec in table.items():
        got = t(dict(img_path=f'/voc/JPEGImages/{name}.jpg'))['gt_class_labels']
        np.testing.assert_array_equal(got, vec)
    # the library functions agree with the tool
    assert read_psa_cls_labels(str(npy)).keys() == table.keys()
    trusted = tmp_path / f'trusted{ext}'
    write_class_label_file(read_psa_cls_labels(str(npy), trust=True), str(trusted))
    back = read_class_label_file(str(trusted), 20)
    assert all((back[n] == v).all() for n, v in table.items())
