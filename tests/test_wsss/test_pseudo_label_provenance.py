# Copyright (c) mmaffseg contributors. All rights reserved.
"""A pseudo-label folder says what made it, through the real tool (tools/make_pseudo_labels.py):
a rerun with another CAM checkpoint or other settings stops before any work (exit 2) instead of
mixing old and new labels, a matching rerun reuses everything, ``--overwrite`` recomputes
exactly the stages made from other inputs, and one run at a time writes a folder. The refused
reruns run the tool as a user does (``run_tool``: a process of its own); the others call its
``main`` in this process, as the runner's other tests do (a new process costs ~20 s of imports
on a busy 2-core machine)."""
import os
import os.path as osp
import re
import shutil
import sys

import pytest
import test_pseudo_label_loop as psa_loop
import torch
from test_pseudo_label_faults import _argv
from tool_runner import load_tool, run_tool

from mmaffseg.postprocessing.dense_crf import DenseCRF
from mmaffseg.utils.folder_lock import LOCK_NAME, FolderLock
from mmaffseg.utils.provenance import RECORD_NAME, file_sha256
from mmaffseg.wsss.pseudo_label_provenance import pseudo_label_provenance

pytestmark = pytest.mark.usefixtures('one_thread')
checkpoints = psa_loop.checkpoints  # the fixture: random CAM classifier and AffinityNet
FOLDERS = ('cams', 'cam', 'rw')  # the CAM cache and the two stages made here
NEW_SETTINGS = ['test_cfg.rw_beta=2', 'test_cfg.cam_bg_score=0.05']


def _args(root, cam, aff, out, *extra, options=()) -> list:
    """The tool's command line: stages cam and rw (no CRF) of the 6 tiny images."""
    return (['tools/make_pseudo_labels.py'] +
            _argv(root, cam, aff, out, '--stages', 'cam', 'rw', *extra)[1:] + list(options))


def _main(args: list, status: int = 0) -> None:
    """The tool's ``main`` on ``args`` (as :func:`_args` gives them) in this process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, 'argv', [osp.basename(args[0])] + args[1:])
        assert load_tool('make_pseudo_labels.py').main() == status


def _files(out) -> dict:
    found = {}
    for folder in FOLDERS:
        for dirpath, _, files in os.walk(osp.join(out, folder)):
            for f in files:
                found[osp.relpath(osp.join(dirpath, f), out)] = osp.join(dirpath, f)
    return found


def _contents(out) -> dict:
    return {rel: open(path, 'rb').read() for rel, path in _files(out).items()}


def _mtimes(out) -> dict:
    return {rel: os.stat(path).st_mtime_ns for rel, path in _files(out).items()}


def _copy(src, dst) -> str:
    """A copy of a finished output folder (file times kept), without its logs."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns('log'))
    return str(dst)


def _error(output: str) -> str:
    lines = [line for line in output.splitlines() if 'make_pseudo_labels.py: error:' in line]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


def other_weights(path: str, out_path: str, seed: int = 1) -> str:
    """A copy of a checkpoint with noise on its weights (a local generator): another model of
    the same architecture (also used by tests/hostile_input_audit.py)."""
    ckpt = torch.load(path, weights_only=True)
    gen = torch.Generator().manual_seed(seed)
    for key, value in ckpt['state_dict'].items():
        if value.is_floating_point() and value.dim() > 1:
            ckpt['state_dict'][key] = value + 0.5 * torch.randn(value.shape, generator=gen)
    torch.save(ckpt, out_path)
    return str(out_path)


@pytest.fixture(scope='module')
def other_cam(checkpoints, tmp_path_factory) -> str:
    """Another CAM classifier."""
    return other_weights(checkpoints[0], tmp_path_factory.mktemp('other_cam') / 'cam2.pth')


@pytest.fixture(scope='module')
def first_run(tiny_synthetic_root, checkpoints, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp('first') / 'out'
    _main(_args(tiny_synthetic_root, *checkpoints, out))
    assert len(_files(out)) == 18
    return str(out)


def test_new_cam_checkpoint_stops_before_any_work(tiny_synthetic_root, checkpoints, other_cam,
                                                  first_run, tmp_path):
    """A rerun into a folder holding cams/ with another --cam-checkpoint reused the old CAMs:
    exit 0, every cam and rw label the old model's. It stops, naming the folder, the stage and
    both checkpoints' digests; --overwrite remakes everything from the new model."""
    cam, aff = checkpoints
    out = _copy(first_run, tmp_path / 'out')
    before = _mtimes(out), _contents(out)
    line = _error(run_tool(_args(tiny_synthetic_root, other_cam, aff, out), expect=2))
    assert f'--out (test_cfg.out_dir): the folder {out} holds results of other inputs' in line
    assert (f"stage 'cams' was made from other inputs (cam_checkpoint: "
            f'{file_sha256(cam)[:19]} -> {file_sha256(other_cam)[:19]})') in line
    assert '--overwrite' in line and 'choose another --out' in line
    assert (_mtimes(out), _contents(out)) == before  # nothing touched

    _main(_args(tiny_synthetic_root, other_cam, aff, out, '--overwrite'))
    clean = tmp_path / 'clean'
    _main(_args(tiny_synthetic_root, other_cam, aff, clean))
    assert _contents(out) == _contents(clean)  # byte-identical to a clean run
    old = before[1]
    for stage in FOLDERS:
        assert any(old[rel] != data for rel, data in _contents(out).items()
                   if rel.startswith(stage + os.sep)), stage  # the new model's labels differ


def test_killed_run_rerun_with_other_settings_is_never_mixed(tiny_synthetic_root, checkpoints,
                                                             first_run, tmp_path):
    """A run killed after 2 of 6 images, rerun with other rw_beta and cam_bg_score, left 2
    old and 4 new labels in cam/ and rw/ (and a table1.md of neither): exit 0. It stops
    naming both stages and settings (not the CAMs, still valid); --overwrite gives the files
    and table of a clean run, reusing the two cached CAMs."""
    out = _copy(first_run, tmp_path / 'out')
    stems = sorted({osp.basename(p).split('_gtFine')[0] for rel, p in _files(out).items()
                    if rel.startswith('cam' + os.sep)})
    assert len(stems) == 6
    for path in _files(out).values():  # atomic writes: a killed run leaves whole files
        if not osp.basename(path).startswith(tuple(stems[:2])):
            os.remove(path)
    for name in ('table1.md', 'metrics.json'):
        os.remove(osp.join(out, name))
    before = _mtimes(out)
    assert len(before) == 6

    line = _error(run_tool(_args(tiny_synthetic_root, *checkpoints, out,
                                 options=NEW_SETTINGS), expect=2))
    assert str(out) in line
    assert "stage 'cam' was made from other inputs (cam_bg_score: 0.2 -> 0.05)" in line
    assert re.search(r"stage 'rw' was made from other inputs \(rw_beta: 16(\.0)? -> 2\)",
                     line), line
    assert "'cams'" not in line and 'recompute cam, rw' in line
    assert _mtimes(out) == before

    _main(_args(tiny_synthetic_root, *checkpoints, out, '--overwrite', options=NEW_SETTINGS))
    clean = tmp_path / 'clean'
    _main(_args(tiny_synthetic_root, *checkpoints, clean, options=NEW_SETTINGS))
    assert _contents(out) == _contents(clean)
    with open(osp.join(out, 'table1.md')) as f, open(osp.join(clean, 'table1.md')) as g:
        assert f.read() == g.read()
    after = _mtimes(out)
    cached = [rel for rel in before if rel.startswith('cams' + os.sep)]
    assert len(cached) == 2 and all(after[rel] == before[rel] for rel in cached)  # reused


def test_matching_rerun_reuses_and_overwrite_recomputes_only_what_changed(
        tiny_synthetic_root, checkpoints, first_run, tmp_path):
    out = _copy(first_run, tmp_path / 'out')
    before = _mtimes(out)
    with open(osp.join(out, RECORD_NAME), 'rb') as f:
        record = f.read()
    _main(_args(tiny_synthetic_root, *checkpoints, out))
    assert _mtimes(out) == before  # nothing recomputed
    with open(osp.join(out, RECORD_NAME), 'rb') as f:
        assert f.read() == record
    assert osp.isfile(osp.join(out, 'table1.md'))  # the report, rewritten

    # a new walk setting: with --overwrite only rw is recomputed; the CAMs and cam stay
    _main(_args(tiny_synthetic_root, *checkpoints, out, '--overwrite',
                options=['test_cfg.rw_beta=2']))
    after = _mtimes(out)
    assert set(after) == set(before)
    for rel in before:
        changed = after[rel] != before[rel]
        assert changed == rel.startswith('rw' + os.sep), rel


def test_second_run_into_a_folder_in_use_stops_at_once(tiny_synthetic_root, checkpoints,
                                                       first_run, tmp_path):
    """Two runs into one folder used to interleave their writes. The second one stops before
    any work naming the holder's pid (here this test's process); the lock file a finished or
    killed run leaves behind does not block the next run."""
    out = _copy(first_run, tmp_path / 'out')
    assert osp.isfile(osp.join(out, LOCK_NAME))  # left by the first run
    before = _mtimes(out)
    with FolderLock(out, '--out'):
        line = _error(run_tool(_args(tiny_synthetic_root, *checkpoints, out,
                                     options=['test_cfg.rw_beta=2']), expect=2))
    assert f'the folder {out} is in use by another run (pid {os.getpid()}' in line
    assert _mtimes(out) == before
    _main(_args(tiny_synthetic_root, *checkpoints, out))
    assert _mtimes(out) == before


def _stage_inputs(tmp_path, crf=None, data=None, cam_model=None, **settings) -> dict:
    """Every declared stage's inputs for the given settings (checkpoints: small files)."""
    for name in ('cam.pth', 'aff.pth'):
        if not (tmp_path / name).exists():
            (tmp_path / name).write_bytes(name.encode())
    loop = dict(cam_scales=[1.0, 0.5], cam_flip=True, cam_bg_score=0.2, low_alpha=4,
                high_alpha=32, rw_alpha=16, rw_beta=8, rw_logt=8, ignore_index=255)
    loop.update(settings)
    data = data or dict(type='D', data_root='/data', indices=60, pipeline=[
        dict(type='LoadImageFromFile'), dict(type='LoadImageLevelLabels', label_file='a.json')])
    cam_model = cam_model or dict(type='CAMClassifier', backbone=dict(
        depth=18, init_cfg=dict(type='Pretrained', checkpoint='x.pth')))
    prov = pseudo_label_provenance(
        str(tmp_path / 'out'), ['cam', 'affinity_labels', 'rw', 'rw_crf'], loop,
        str(tmp_path / 'cam.pth'), cam_model, data, DenseCRF(**(crf or {})),
        str(tmp_path / 'aff.pth'), dict(type='AffinityNet', decode_head=dict(radius=5)),
        ['a.png', 'b.png'])
    return {stage: prov.inputs(stage) for stage in prov.stages}


def test_each_setting_feeds_exactly_the_stages_whose_result_it_changes(tmp_path):
    reference = _stage_inputs(tmp_path)
    assert list(reference) == ['cams', 'cam', 'affinity_labels', 'rw', 'rw_crf', 'report']

    def changed(**kwargs) -> list:
        new = _stage_inputs(tmp_path, **kwargs)
        return [stage for stage in reference if new[stage] != reference[stage]]

    every = list(reference)
    assert changed(cam_scales=[1.0]) == every and changed(cam_flip=False) == every
    # CAMs computed in bf16 are not the float32 ones; float32 (the reference) is not recorded
    assert changed(cam_precision='bf16') == every and changed(cam_precision='fp32') == []
    assert _stage_inputs(tmp_path, cam_precision='bf16')['cams']['cam_precision'] == 'bf16'
    assert changed(cam_bg_score=0.05) == ['cam', 'report']
    assert changed(low_alpha=2) == ['affinity_labels', 'report']
    assert changed(ignore_index=254) == ['affinity_labels', 'report']
    assert changed(rw_beta=2) == ['rw', 'rw_crf', 'report']
    assert changed(rw_logt=4) == ['rw', 'rw_crf', 'report']
    assert changed(crf=dict(iterations=5)) == ['affinity_labels', 'rw_crf', 'report']
    assert changed(data=dict(type='D', data_root='/other', indices=60, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadImageLevelLabels', label_file='a.json')])) == every
    assert reference['cams']['data.pipeline.1.label_file'] == 'a.json'  # a change names it
    # how the work is done, which images, and weights the checkpoint replaces: no stage
    assert changed(crf=dict(workers=2)) == []
    assert changed(data=dict(type='D', data_root='/data', indices=None, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadImageLevelLabels', label_file='a.json')])) == []
    assert changed(cam_model=dict(type='CAMClassifier', backbone=dict(depth=18))) == []
    # checkpoints by content: another AffinityNet changes the walk only, another CAM
    # classifier everything
    (tmp_path / 'aff.pth').write_bytes(b'another AffinityNet')
    assert changed() == ['rw', 'rw_crf', 'report']
    (tmp_path / 'cam.pth').write_bytes(b'another CAM classifier')
    assert changed() == every
