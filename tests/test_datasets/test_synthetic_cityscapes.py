# Copyright (c) mmaffseg contributors. All rights reserved.
import glob
import json
import os
import os.path as osp
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest
from tool_runner import REPO

from mmaffseg.datasets import CITYSCAPES_CLASSES, StreetSceneGenerator
from mmaffseg.datasets import synthetic_cityscapes as synth

H, W = 96, 192
TRAIN_TO_LABEL = {c.train_id: c.label_id for c in CITYSCAPES_CLASSES}
THINGS = {c.train_id for c in CITYSCAPES_CLASSES if c.has_instances}


@pytest.fixture(scope='module')
def scenes():
    gen = StreetSceneGenerator(H, W)
    return [gen.render(0, i) for i in range(12)]


def test_render_is_deterministic_and_seeded():
    gen = StreetSceneGenerator(H, W)
    a, b = gen.render(3, 5), gen.render(3, 5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(gen.render(4, 5).image, a.image)
    assert not np.array_equal(gen.render(3, 6).image, a.image)


def test_label_ranges_and_instance_encoding(scenes):
    for s in scenes:
        assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
        ids = np.unique(s.label_train_ids)
        assert set(ids.tolist()) <= set(range(19)) | {255}
        for train_id in ids:
            m = s.label_train_ids == train_id
            if train_id == 255:
                assert (s.label_ids[m] == 0).all() and (s.instance_ids[m] == 0).all()
                continue
            assert (s.label_ids[m] == TRAIN_TO_LABEL[train_id]).all()
            if train_id in THINGS:
                assert (s.instance_ids[m] // 1000 == TRAIN_TO_LABEL[train_id]).all()
            else:
                assert (s.instance_ids[m] == TRAIN_TO_LABEL[train_id]).all()


def test_height_priors_and_instances(scenes):
    rows = {}
    yy = np.arange(H)[:, None].repeat(W, 1)
    for s in scenes:
        for name in ('sky', 'building', 'road', 'sidewalk', 'car', 'person'):
            tid = next(c.train_id for c in CITYSCAPES_CLASSES if c.name == name)
            rows.setdefault(name, []).extend(yy[s.label_train_ids == tid].tolist())
    mean = {k: np.mean(v) for k, v in rows.items()}
    assert mean['sky'] < mean['building'] < mean['car'] < mean['road']
    assert mean['building'] < mean['sidewalk']
    # several instances per image for the common thing classes
    cars = [len(np.unique(s.instance_ids[s.label_train_ids == 13])) for s in scenes]
    assert np.median(cars) >= 2
    present = set()
    for s in scenes:
        present |= set(np.unique(s.label_train_ids).tolist())
    assert len(present - {255}) >= 16, f'only classes {sorted(present)} appear in 12 scenes'


def test_colour_alone_does_not_separate_classes(scenes):
    """A per-pixel colour lookup table (16 levels per channel) fitted on 8 scenes and applied
    to 4 others must stay far from perfect: a network has to use context and texture."""
    def codes(img):
        q = (img // 16).astype(np.int64)
        return q[..., 0] * 256 + q[..., 1] * 16 + q[..., 2]
    counts = np.zeros((4096, 256), np.int64)
    for s in scenes[:8]:
        np.add.at(counts, (codes(s.image).ravel(), s.label_train_ids.ravel()), 1)
    table = counts.argmax(1)
    correct = total = 0
    for s in scenes[8:]:
        valid = s.label_train_ids != 255
        pred = table[codes(s.image)]
        correct += (pred == s.label_train_ids)[valid].sum()
        total += valid.sum()
    assert correct / total < 0.8


def _generate(root, **kw):
    params = dict(num_train=3, num_val=2, seed=1, height=H, width=W, verbose=False)
    params.update(kw)
    return synth.generate_synthetic_cityscapes(str(root), **params)


def test_layout_and_index_independence(tmp_path):
    root = _generate(tmp_path / 'a')
    imgs = sorted(glob.glob(osp.join(root, 'leftImg8bit', 'train', '*', '*_leftImg8bit.png')))
    assert len(imgs) == 3
    assert len(glob.glob(osp.join(root, 'leftImg8bit', 'val', '*', '*_leftImg8bit.png'))) == 2
    for img in imgs:
        stem = img.replace('leftImg8bit', 'gtFine', 1)[:-len('_leftImg8bit.png')]
        train_ids = cv2.imread(stem + '_gtFine_labelTrainIds.png', cv2.IMREAD_UNCHANGED)
        inst = cv2.imread(stem + '_gtFine_instanceIds.png', cv2.IMREAD_UNCHANGED)
        assert train_ids.shape == (H, W) and train_ids.dtype == np.uint8
        assert inst.dtype == np.uint16 and osp.isfile(stem + '_gtFine_labelIds.png')
    # image i does not depend on how many images are generated
    root_b = _generate(tmp_path / 'b', num_train=2)
    first_a = sorted(glob.glob(osp.join(root, 'leftImg8bit', 'train', '*', '*.png')))
    first_b = sorted(glob.glob(osp.join(root_b, 'leftImg8bit', 'train', '*', '*.png')))
    common = set(osp.relpath(p, root) for p in first_a) & set(
        osp.relpath(p, root_b) for p in first_b)
    assert len(common) == 2
    for rel in common:
        np.testing.assert_array_equal(cv2.imread(osp.join(root, rel)),
                                      cv2.imread(osp.join(root_b, rel)))


def test_generation_is_atomic(tmp_path, monkeypatch):
    root = tmp_path / 'data'
    calls = []

    def failing_render(self, seed, index):
        calls.append(index)
        if len(calls) == 3:
            raise RuntimeError('simulated crash')
        return original(self, seed, index)

    original = StreetSceneGenerator.render
    monkeypatch.setattr(StreetSceneGenerator, 'render', failing_render)
    with pytest.raises(RuntimeError, match='simulated crash'):
        _generate(root)
    assert not root.exists()
    assert os.listdir(tmp_path) == []  # no temporary folder left behind
    monkeypatch.setattr(StreetSceneGenerator, 'render', original)
    _generate(root)
    assert synth.read_marker(str(root))['num_train'] == 3


def test_generated_folders_follow_the_umask(tmp_path):
    """tools/dataset_converters/synthetic_cityscapes.py under umask 022: every folder is
    drwxr-xr-x like os.makedirs' (the root was mkdtemp's drwx------ before its rename)."""
    root = tmp_path / 'synthetic'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'dataset_converters', 'synthetic_cityscapes.py'),
         str(root), '--num-train', '2', '--num-val', '1', '--height', str(H), '--width', str(W)],
        capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o022))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    folders = [str(root)] + [d for d in glob.glob(osp.join(root, '**'), recursive=True)
                             if osp.isdir(d)]
    modes = {osp.relpath(d, root): stat.filemode(os.stat(d).st_mode) for d in folders}
    assert set(modes.values()) == {'drwxr-xr-x'}, modes


def test_existing_folders_are_never_overwritten(tmp_path):
    root = tmp_path / 'data'
    _generate(root)
    marker = root / synth.MARKER
    mtime = marker.stat().st_mtime_ns
    _generate(root)  # identical request: a no-op
    assert marker.stat().st_mtime_ns == mtime
    with pytest.raises(FileExistsError, match='generated with'):
        _generate(root, num_train=4)
    partial = tmp_path / 'partial'
    (partial / 'leftImg8bit').mkdir(parents=True)
    with pytest.raises(FileExistsError, match='half-written or foreign'):
        _generate(partial)
    assert json.loads(marker.read_text())['seed'] == 1


def test_dataset_class_generates_and_lists(tmp_path):
    from mmseg.registry import DATASETS
    ds = DATASETS.build(
        dict(type='SyntheticCityscapesDataset', data_root=str(tmp_path / 'd'), num_train=3,
             num_val=2, image_size=(H, W),
             data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
             pipeline=[]))
    assert len(ds) == 2
    assert ds.metainfo['classes'][0] == 'road' and len(ds.metainfo['classes']) == 19
    with pytest.raises(FileNotFoundError, match='no complete synthetic'):
        DATASETS.build(dict(type='SyntheticCityscapesDataset', data_root=str(tmp_path / 'x'),
                            auto_generate=False, pipeline=[]))


def test_holdout_splits_the_training_images(tiny_synthetic_root):
    # The held-back selection split: every 3rd training image in path order (2 of 6); the
    # fitting part is the rest, the two never overlap and together are the whole split.
    from mmseg.registry import DATASETS
    train_files = sorted(glob.glob(osp.join(tiny_synthetic_root, 'leftImg8bit', 'train', '*',
                                            '*.png')))
    assert len(train_files) == 6

    def paths(**kw):
        ds = DATASETS.build(dict(
            type='SyntheticCityscapesDataset', data_root=tiny_synthetic_root, num_train=6,
            num_val=3, image_size=(64, 128), pipeline=[],
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'), **kw))
        return [info['img_path'] for info in ds.load_data_list()], len(ds)

    everything, n = paths()
    assert everything == train_files and n == 6
    held, n_held = paths(holdout='only', holdout_every=3)
    fit, n_fit = paths(holdout='exclude', holdout_every=3)
    assert held == [train_files[2], train_files[5]] and n_held == 2
    assert fit == [f for f in train_files if f not in held] and n_fit == 4
    with pytest.raises(ValueError, match="holdout must be None, 'exclude'"):
        paths(holdout='val')
    with pytest.raises(ValueError, match='holdout_every must be >= 2'):
        paths(holdout='only', holdout_every=1)
