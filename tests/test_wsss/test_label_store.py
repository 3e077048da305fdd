# Copyright (c) mmaffseg contributors. All rights reserved.
"""The pseudo-label store: atomic label and CAM-cache writes, resume after an interrupted write,
ConcatDataset navigation (against mmengine's own index mapping)."""
import errno
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset, ConcatDataset

from mmaffseg.utils import atomic_io
from mmaffseg.wsss import label_store
from mmaffseg.wsss.label_store import OutputFolderError, PseudoLabelStore, leaf_dataset, read_png


class _Items(BaseDataset):
    """``n`` items ``dict(name=..., k=...)``."""

    def __init__(self, name: str, n: int) -> None:
        self.name, self.n = name, n
        super().__init__(serialize_data=False, lazy_init=False)

    def load_data_list(self):
        return [dict(name=self.name, k=k) for k in range(self.n)]


def test_leaf_dataset_matches_concat_dataset():
    outer = ConcatDataset([_Items('a', 2), _Items('b', 3), _Items('c', 1), _Items('d', 4)])
    assert len(outer) == 10
    for index in list(range(10)) + list(range(-10, 0)):
        leaf, local = leaf_dataset(outer, index)
        assert leaf.get_data_info(local) == outer.get_data_info(index), index
    with pytest.raises(IndexError, match='out of range'):
        leaf_dataset(outer, 10)


def _store(tmp_path):
    return PseudoLabelStore(str(tmp_path), ('rw', 'cam'))


def test_interrupted_label_write_leaves_no_file_and_resumes(tmp_path, monkeypatch):
    store = _store(tmp_path)
    assert store.stages == ('cam', 'rw')  # pipeline order
    paths = {s: str(tmp_path / s / 'img.png') for s in store.stages}
    label = np.random.default_rng(0).integers(0, 21, (7, 9))
    store.write_label(paths['cam'], torch.from_numpy(label))

    def killed(f, data):
        f.write(data[:len(data) // 2])
        raise KeyboardInterrupt  # the process is stopped mid-write

    monkeypatch.setattr(atomic_io, '_write_all', killed)
    with pytest.raises(KeyboardInterrupt):
        store.write_label(paths['rw'], label)
    monkeypatch.undo()
    assert not osp.exists(paths['rw'])  # never a half-written label
    assert store.missing(paths) == ['rw']  # a re-run makes only this one
    stale = tmp_path / 'rw' / '.img.png.x.tmp'
    stale.write_bytes(b'half')  # what a killed process leaves
    store.clear_interrupted([paths['rw']])
    assert not stale.exists()
    store.write_label(paths['rw'], label)
    assert store.missing(paths) == []
    for path in paths.values():
        np.testing.assert_array_equal(read_png(path), label)
    assert sorted(os.listdir(tmp_path / 'rw')) == ['img.png']


def test_cam_cache_round_trip_and_rejects(tmp_path, monkeypatch):
    store = _store(tmp_path)
    cache = str(tmp_path / 'cams' / 'img.npz')
    cams = torch.rand(2, 5, 6).half()
    ids = torch.tensor([4, 17])
    assert store.load_cams(cache, ids, (5, 6)) is None  # absent
    store.save_cams(cache, cams, ids)
    got, got_ids = store.load_cams(cache, ids, (5, 6))
    assert torch.equal(got, cams) and torch.equal(got_ids, ids)
    assert store.load_cams(cache, torch.tensor([4]), (5, 6)) is None  # other classes
    assert store.load_cams(cache, ids, (5, 7)) is None  # other size
    logged = []
    monkeypatch.setattr(label_store, 'print_log', lambda msg, *a, **k: logged.append(msg))
    with open(cache, 'r+b') as f:
        f.truncate(os.path.getsize(cache) // 2)
    assert store.load_cams(cache, ids, (5, 6)) is None
    assert len(logged) == 1 and cache in logged[0] and 'recomputing' in logged[0]


def test_full_disk_stops_with_output_folder_error(tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, 'No space left on device', path)

    monkeypatch.setattr(label_store, 'atomic_write_bytes', full)
    with pytest.raises(OutputFolderError, match='re-run to resume'):
        _store(tmp_path).write_label(str(tmp_path / 'cam' / 'a.png'), np.zeros((2, 2)))
