# Copyright (c) mmaffseg contributors. All rights reserved.
"""Red-team round on the provenance records of the pseudo-label tools: each test is
a way a stale, mixed or destroyed output got through, or a raw traceback, before the fix."""
import importlib.util
import json
import os
import os.path as osp
import shutil
import sys

import pytest
import torch

from mmaffseg.utils.checkpoint import load_local_weights
from mmaffseg.utils.config_errors import OutputDirError
from mmaffseg.utils.folder_claim import claim_folder
from mmaffseg.utils.provenance import Provenance, ProvenanceError, file_sha256
from mmaffseg.utils.safe_load import CheckpointError
from mmaffseg.wsss.pseudo_label_provenance import (
    CAMS_STAGE,
    IMAGE_RECORD,
    check_image_record,
    data_file_inputs,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/psa/psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-'
                  '128x256.py')


def _rewrite_keeping_size_and_mtime(path, data: bytes) -> None:
    st = os.stat(path)
    assert len(data) == st.st_size
    with open(path, 'r+b') as f:  # in place: same inode
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # what `touch -r` does


def test_checkpoint_rewritten_with_same_size_and_mtime_is_rehashed(tmp_path):
    """The digest cache was keyed by (path, size, mtime): a checkpoint replaced by another of
    the same size with its mtime set back (``touch -r``) kept the old digest, and the run reused
    the old model's CAMs (exit 0)."""
    ckpt = tmp_path / 'cam.pth'
    ckpt.write_bytes(b'A' * 64)
    old = file_sha256(str(ckpt))
    _rewrite_keeping_size_and_mtime(ckpt, b'B' * 64)
    assert file_sha256(str(ckpt)) != old


def test_stage_record_that_is_not_a_mapping_is_one_line_error(tmp_path):
    """A hand-edited record (``"cams": 5``) was a raw TypeError traceback (exit 1)."""
    prov = Provenance(str(tmp_path), '--out', 'test').stage(CAMS_STAGE, dict(a=1))
    (tmp_path / 'provenance.json').write_text(json.dumps(dict(stages={CAMS_STAGE: 5})))
    with pytest.raises(ProvenanceError, match='cannot be read'):
        prov.check([CAMS_STAGE])
    assert prov.check([CAMS_STAGE], overwrite=True) == [CAMS_STAGE]


def test_regenerated_path_that_is_a_folder_is_not_removed(tmp_path):
    """``select_psa_params --result DIR`` removed the folder DIR and everything in it."""
    keep = tmp_path / 'mine'
    (keep / 'sub').mkdir(parents=True)
    (keep / 'sub' / 'file.txt').write_text('precious')
    prov = Provenance(str(tmp_path / 'out'), '--out', 'test').stage('s', dict(a=1))
    with pytest.raises(OutputDirError, match='is a folder'):
        claim_folder(prov, {}, regenerated=[str(keep)])
    assert (keep / 'sub' / 'file.txt').read_text() == 'precious'


def test_image_rewritten_under_its_name_stops_or_recomputes(tmp_path):
    """An image replaced by another under the same file name: its outputs were skipped as
    done (exit 0, labels of the old image)."""
    img, mask = tmp_path / 'a.png', tmp_path / 'a_mask.png'
    img.write_bytes(b'image-1')
    mask.write_bytes(b'mask')
    out = tmp_path / 'out'
    outputs = [out / 'cams' / 'a.npz', out / 'cam' / 'a.png']
    images = [([str(img), str(mask)], [str(p) for p in outputs])]
    check_image_record(str(out), images)  # first run: recorded
    for p in outputs:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b'x')
    assert check_image_record(str(out), images) == []  # unchanged: reused
    _rewrite_keeping_size_and_mtime(img, b'image-2')
    with pytest.raises(ProvenanceError, match='1 image.*changed'):
        check_image_record(str(out), images)
    assert all(p.exists() for p in outputs)
    assert check_image_record(str(out), images, overwrite=True) == [str(img)]
    assert not any(p.exists() for p in outputs)
    assert check_image_record(str(out), images) == []  # recorded anew
    (out / IMAGE_RECORD).write_text('[1, 2]')  # unreadable: an error, not a traceback
    with pytest.raises(ProvenanceError, match='cannot be read'):
        check_image_record(str(out), images)


def test_label_file_is_recorded_by_content(tmp_path):
    """PSA's image-level label file (``label_file``) changes every CAM and label; its contents
    were not recorded (only its path), so a new label file reused the old outputs."""
    labels = tmp_path / 'cls_labels.json'
    labels.write_text('{"a": [1]}')
    dataset = dict(data_root=str(tmp_path), ann_file='train.txt', pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadImageLevelLabels', label_file='cls_labels.json')])
    (tmp_path / 'train.txt').write_text('a\n')
    before = data_file_inputs(dataset)
    assert list(before) == ['pipeline.1.label_file']  # not ann_file: it only chooses images
    labels.write_text('{"a": [2]}')
    assert data_file_inputs(dataset) != before


def test_mis_sized_checkpoint_is_one_line_error(tmp_path):
    """A CAM checkpoint of another num_classes was a raw RuntimeError traceback (size
    mismatch from load_state_dict)."""
    path = tmp_path / 'w.pth'
    torch.save(dict(state_dict=torch.nn.Linear(4, 8).state_dict()), path)
    with pytest.raises(CheckpointError, match='mis-sized weights.*weight \\[8, 4\\] vs \\[3, 4\\]'):
        load_local_weights(torch.nn.Linear(4, 3), str(path), '--cam-checkpoint')


# ----------------------------------------------------------------------- the tools, in-process
def _tool(name):
    spec = importlib.util.spec_from_file_location(f'_red_{name}', osp.join(REPO, 'tools',
                                                                             f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """4 synthetic 64x128 images and an untrained CAM checkpoint."""
    from mmengine.registry import init_default_scope
    from mmengine.runner import set_random_seed
    from mmseg.registry import MODELS

    from mmaffseg.cli import load_config
    root = tmp_path_factory.mktemp('red_pl')
    cfg = load_config(CONFIG)
    init_default_scope('mmseg')
    set_random_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    cam = str(root / 'cam.pth')
    torch.save(dict(state_dict=model.state_dict()), cam)
    options = [
        f'test_dataloader.dataset.data_root={root / "data"}',
        'test_dataloader.dataset.image_size=[64,128]', 'test_dataloader.dataset.num_train=4',
        'test_dataloader.dataset.num_val=1', 'test_dataloader.dataset.indices=3',
        'test_cfg.cam_scales=[1.0,0.5]', 'test_cfg.crf.workers=0', 'test_cfg.num_threads=1'
    ]
    return dict(root=root, cam=cam, options=options)


def _make(tiny, out, monkeypatch, *extra):
    argv = ['make_pseudo_labels.py', CONFIG, '--cam-checkpoint', tiny['cam'], '--out', str(out),
            '--stages', 'cam', '--work-dir', str(tiny['root'] / 'wd'), *extra,
            '--cfg-options', *tiny['options']]
    monkeypatch.setattr(sys, 'argv', argv)
    return _tool('make_pseudo_labels').main()


def _select(tiny, out, *extra):
    return _tool('select_psa_params').main([
        CONFIG, '--sweep', 'affinity', '--cam-checkpoint', tiny['cam'], '--out', str(out),
        '--low-alphas', '2', '--work-dir', str(tiny['root'] / 'wd'), *extra, '--cfg-options',
        *tiny['options']])


def _tree(folder):
    return {osp.relpath(osp.join(d, f), folder): open(osp.join(d, f), 'rb').read()
            for d, _, files in os.walk(folder) for f in files}


def test_select_then_make_in_one_folder_equals_a_clean_run(tiny, monkeypatch):
    """select_psa_params cached CAMs resized by torch, make_pseudo_labels by PIL, under the
    same record: make_pseudo_labels into a folder of select_psa_params reused them and its
    labels differed from a clean run's (exit 0)."""
    shared, clean = tiny['root'] / 'shared', tiny['root'] / 'clean'
    assert _select(tiny, shared) == 0
    assert _make(tiny, shared, monkeypatch) == 0
    assert _make(tiny, clean, monkeypatch) == 0
    for stage in ('cams', 'cam'):
        assert _tree(shared / stage) == _tree(clean / stage)


def test_select_result_folder_is_refused(tiny, capsys):
    """``--result`` naming a folder: exit 2, the folder and its files kept."""
    keep = tiny['root'] / 'keep'
    (keep / 'sub').mkdir(parents=True)
    (keep / 'sub' / 'f.txt').write_text('precious')
    assert _select(tiny, tiny['root'] / 'sel', '--result', str(keep)) == 2
    assert (keep / 'sub' / 'f.txt').read_text() == 'precious'
    assert 'is a folder' in capsys.readouterr().err
    out = tiny['root'] / 'sel'
    assert _select(tiny, out, '--result', str(out / 'provenance.json')) == 2


def test_make_stops_on_an_image_rewritten_under_its_name(tiny, monkeypatch, capsys):
    out = tiny['root'] / 'img'
    data = tiny['root'] / 'data'
    assert _make(tiny, out, monkeypatch) == 0
    images = sorted(osp.join(d, f) for d, _, fs in os.walk(data / 'leftImg8bit' / 'train')
                    for f in fs)
    backup = tiny['root'] / 'backup.png'
    shutil.copy2(images[0], backup)
    try:
        shutil.copy(images[1], images[0])
        assert _make(tiny, out, monkeypatch) == 2
        assert 'whose files changed' in capsys.readouterr().err
        assert _make(tiny, out, monkeypatch, '--overwrite') == 0
    finally:
        shutil.copy(backup, images[0])


def test_record_path_that_is_a_folder_is_one_line_error(tmp_path):
    """``provenance.json`` a folder and ``--overwrite``: a raw IsADirectoryError traceback."""
    (tmp_path / 'provenance.json' / 'x').mkdir(parents=True)
    prov = Provenance(str(tmp_path), '--out', 'test').stage(CAMS_STAGE, dict(a=1))
    with pytest.raises(ProvenanceError, match='cannot be written'):
        claim_folder(prov, {CAMS_STAGE: [str(tmp_path / 'cams')]}, overwrite=True)
