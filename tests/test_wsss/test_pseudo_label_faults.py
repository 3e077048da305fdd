# Copyright (c) mmaffseg contributors. All rights reserved.
"""The PSA pseudo-label runner under faults: NaN checkpoints, corrupt CAM caches, read-only or
full output folders, bad image files."""
import errno
import json
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
import pytest
import test_pseudo_label_loop as psa_loop
import torch
from test_pseudo_label_loop import PL_CFG, _load_tool, _options, _outputs, _runner

from mmaffseg.wsss import label_store, pseudo_label_stages
from mmaffseg.wsss.label_store import OutputFolderError, PseudoLabelStore
from mmaffseg.wsss.pseudo_label_loop import PseudoLabelLoop

pytestmark = pytest.mark.usefixtures('one_thread')
checkpoints = psa_loop.checkpoints  # the fixture: random CAM classifier and AffinityNet


def _argv(root, cam_ckpt, aff_ckpt, out, *extra, work_dir=None):
    argv = ['make_pseudo_labels.py', PL_CFG, '--cam-checkpoint', cam_ckpt, '--out', str(out),
            '--work-dir', str(work_dir or osp.join(out, 'log')), *extra, '--cfg-options']
    if aff_ckpt:
        argv[4:4] = ['--aff-checkpoint', aff_ckpt]
    argv += [f'{k}={v}' for k, v in _options(root).items() if not isinstance(v, list)]
    return argv + ['test_dataloader.dataset.image_size=[64,128]', 'test_cfg.cam_scales=[1.0]']


def _with_nan_weight(path, out_path):
    """A copy of a checkpoint whose first backbone conv has one NaN weight."""
    ckpt = torch.load(path, weights_only=True)
    state = ckpt['state_dict']
    key = next(k for k in state if k.startswith('backbone.') and state[k].dim() == 4)
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float('nan')
    torch.save(ckpt, out_path)
    return str(out_path)


@pytest.mark.parametrize('which', ['cam', 'aff'])
def test_nan_weight_is_refused_before_any_image(tiny_synthetic_root, checkpoints, tmp_path,
                                                monkeypatch, capsys, which):
    """A checkpoint with a NaN weight stops the run at load, naming the argument, the file and
    the tensor; no label is written."""
    cam, aff = checkpoints
    if which == 'cam':
        cam = bad = _with_nan_weight(cam, tmp_path / 'cam_nan.pth')
    else:
        aff = bad = _with_nan_weight(aff, tmp_path / 'aff_nan.pth')
    out = tmp_path / 'out'
    monkeypatch.setattr(sys, 'argv', _argv(tiny_synthetic_root, cam, aff, out, '--no-crf'))
    with pytest.raises(SystemExit) as exit_info:
        _load_tool().main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f'--{which}-checkpoint: checkpoint {bad} holds non-finite weights: backbone.' in err
    assert '(1 NaN, 0 inf of' in err and '--allow-nonfinite-weights' in err
    assert not [f for f in _outputs(str(out)) if f.endswith('.png')]


@pytest.mark.parametrize('which', ['cam', 'aff'])
def test_allowed_nan_weight_fails_every_image_clearly(tiny_synthetic_root, checkpoints,
                                                      tmp_path, monkeypatch, which):
    cam, aff = checkpoints
    if which == 'cam':
        cam = _with_nan_weight(cam, tmp_path / 'cam_nan.pth')
        expected = 'the CAMs contain'
    else:
        aff = _with_nan_weight(aff, tmp_path / 'aff_nan.pth')
        expected = 'the affinities contain'
    out = tmp_path / 'out'
    monkeypatch.setattr(sys, 'argv', _argv(tiny_synthetic_root, cam, aff, out, '--no-crf',
                                           '--allow-nonfinite-weights'))
    assert _load_tool().main() == 1
    failures = open(out / 'failures.txt').read().splitlines()
    assert len(failures) == 6
    assert all(expected in line and 'NaN/inf' in line for line in failures)
    assert all((cam if which == 'cam' else aff) in line for line in failures)  # names it
    assert not osp.exists(out / 'table1.md') and not osp.exists(out / 'metrics.json')
    assert not [f for f in _outputs(str(out)) if f.startswith('rw' + os.sep)]  # no garbage
    if which == 'cam':
        assert not [f for f in _outputs(str(out)) if f.startswith('cams' + os.sep)]


def test_check_finite_names_what_and_counts():
    pseudo_label_stages.check_finite(torch.ones(3), 'x', 'fine')
    with pytest.raises(ValueError, match=r'the scores contain 2 NaN/inf value\(s\) of 4; lower'):
        pseudo_label_stages.check_finite(torch.tensor([1., float('nan'), float('inf'), 0.]),
                                       'the scores', 'lower it')


def test_unreadable_cam_cache_is_recomputed(tiny_synthetic_root, checkpoints, tmp_path,
                                            monkeypatch):
    runner = _runner(tiny_synthetic_root, checkpoints, tmp_path, stages=['cam'])
    runner.test()
    reference = {rel: open(path, 'rb').read() for rel, path in _outputs(str(tmp_path)).items()}
    caches = sorted(p for rel, p in _outputs(str(tmp_path)).items() if rel.startswith('cams'))
    assert len(caches) == 6
    data = open(caches[0], 'rb').read()
    open(caches[0], 'wb').write(data[:len(data) // 2])  # truncated
    open(caches[1], 'wb').close()  # empty
    flipped = bytearray(open(caches[2], 'rb').read())
    flipped[len(flipped) // 2] ^= 0xFF  # one bit-flipped byte in the compressed CAMs
    open(caches[2], 'wb').write(bytes(flipped))
    open(caches[3], 'wb').write(os.urandom(len(data)))  # random bytes
    for rel, path in _outputs(str(tmp_path)).items():
        if rel.startswith('cam' + os.sep):
            os.remove(path)  # the cam labels are remade from the (broken) caches
    logged = []
    monkeypatch.setattr(label_store, 'print_log',
                        lambda msg, *a, **k: logged.append(str(msg)))
    runner = _runner(tiny_synthetic_root, checkpoints, tmp_path, stages=['cam'])
    runner.test()
    assert runner.test_loop.failures == []
    assert {rel: open(path, 'rb').read()
            for rel, path in _outputs(str(tmp_path)).items()} == reference  # recomputed alike
    for cache in caches[:4]:
        assert any(cache in msg and 'unreadable' in msg for msg in logged), cache


def test_output_folder_under_a_file_stops_before_any_image(tiny_synthetic_root, checkpoints,
                                                           tmp_path, monkeypatch, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    out = blocker / 'out'
    monkeypatch.setattr(PseudoLabelLoop, '_model_pass', lambda *a: pytest.fail('computed'))
    monkeypatch.setattr(sys, 'argv', _argv(tiny_synthetic_root, *checkpoints, out, '--no-crf',
                                           work_dir=tmp_path / 'log'))
    assert _load_tool().main() == 2
    err = capsys.readouterr().err
    assert f'--out (test_cfg.out_dir): the folder {out} cannot be created or written' in err


@pytest.mark.skipif(os.name != 'posix' or os.geteuid() == 0,
                    reason='root writes into read-only folders')
def test_read_only_output_folder(tmp_path):
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputFolderError, match=f'the folder {folder} cannot be created'):
            PseudoLabelStore(str(folder), ['cam']).check()
    finally:
        folder.chmod(0o755)


def test_free_space_is_checked_and_reported(tmp_path, monkeypatch):
    free = PseudoLabelStore(str(tmp_path / 'new'), ['cam']).check()
    assert osp.isdir(tmp_path / 'new') and os.listdir(tmp_path / 'new') == []  # probe removed
    assert free == pytest.approx(shutil.disk_usage(tmp_path).free,
                                 rel=0.01)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, 'disk_usage',
                        lambda path: usage._replace(free=2**20))
    with pytest.raises(OutputFolderError, match=r'has 1.0 MiB free, less than the 64 MiB'):
        PseudoLabelStore(str(tmp_path), ['cam']).check()


def test_disk_full_mid_run_stops_the_run(tiny_synthetic_root, checkpoints, tmp_path,
                                         monkeypatch, capsys):
    """ENOSPC on a write stops at once (exit 2), not after failing every other image."""
    real_write = label_store.atomic_write_bytes
    writes = []

    def fill_up(path, data):
        writes.append(path)
        if len(writes) > 3:
            raise OSError(errno.ENOSPC, 'No space left on device', path)
        real_write(path, data)

    monkeypatch.setattr(label_store, 'atomic_write_bytes', fill_up)
    out = tmp_path / 'out'
    monkeypatch.setattr(sys, 'argv', _argv(tiny_synthetic_root, *checkpoints, out, '--no-crf'))
    assert _load_tool().main() == 2
    assert len(writes) == 4  # stopped at the first failed write
    err = capsys.readouterr().err
    assert f'cannot write {writes[-1]}' in err and 're-run to resume' in err


def test_empty_and_tiny_image_files_are_named(tiny_synthetic_root, checkpoints, tmp_path,
                                              monkeypatch):
    root = str(tmp_path / 'data')
    shutil.copytree(tiny_synthetic_root, root)
    images = sorted(osp.join(d, f) for d, _, fs in os.walk(osp.join(root, 'leftImg8bit', 'train'))
                    for f in fs)
    open(images[0], 'wb').close()  # empty
    cv2.imwrite(images[1], np.full((1, 1, 3), 128, np.uint8))  # 1x1, with a 1x1 label map
    label = images[1].replace('leftImg8bit', 'gtFine', 1).replace(
        '_leftImg8bit.png', '_gtFine_labelTrainIds.png')
    assert osp.isfile(label)
    cv2.imwrite(label, np.full((1, 1), 13, np.uint8))  # car
    label_file = tmp_path / 'labels.json'
    label_file.write_text(json.dumps({osp.splitext(osp.basename(p))[0]: [2] for p in images}))
    out = tmp_path / 'out'
    argv = _argv(root, checkpoints[0], None, out, '--stages', 'cam')
    argv += [f'test_dataloader.dataset.pipeline.2.label_file={label_file}',
             'test_cfg.cam_scales=[1.0,0.5]', 'test_dataloader.dataset.indices=2']
    monkeypatch.setattr(sys, 'argv', argv)
    assert _load_tool().main() == 1
    failures = open(out / 'failures.txt').read().splitlines()
    assert [line.split('\t')[0] for line in failures] == images[:2]
    assert f'could not load the image {images[0]}: the file is empty (0 bytes)' in failures[0]
    assert ('the image is 1x1 pixels, too small for the CAM scale 0.5' in failures[1]
            and 'at least 2 pixels a side' in failures[1])


def test_checkpoint_of_another_model_names_the_argument(tiny_synthetic_root, checkpoints,
                                                        tmp_path, monkeypatch, capsys):
    """The CAM classifier given as --aff-checkpoint was a raw ValueError traceback (found by
    tests/hostile_input_audit.py): exit 2 naming the argument and the file."""
    cam, _ = checkpoints
    monkeypatch.setattr(sys, 'argv', _argv(tiny_synthetic_root, cam, cam, tmp_path / 'out',
                                           '--no-crf'))
    with pytest.raises(SystemExit) as exit_info:
        _load_tool().main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (f'make_pseudo_labels.py: error: --aff-checkpoint: checkpoint {cam} (AffinityNet '
            'checkpoint (--aff-checkpoint)) does not fit the AffinityNet' in err), err[-2000:]
