# Copyright (c) mmaffseg contributors. All rights reserved.
"""Red-team regressions of tools/train.py's work-dir guarantees (README, "Reliability"): each
test failed before its fix."""
import errno
import json
import logging
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from mmaffseg.cli.work_dir import check_work_dir_record, checkpoint_folder, claim_work_dir
from mmaffseg.engine.finite_check_hook import FiniteCheckHook
from mmaffseg.utils.config_errors import OutputDirError
from mmaffseg.utils.finite import NonFiniteError
from mmaffseg.utils.folder_lock import FolderInUseError, FolderLock
from mmaffseg.utils.provenance import ProvenanceError, describe_changes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py')


def _cfg(work_dir, lr=0.01, resume=False, load_from=None, out_dir=None, prob=0.5):
    checkpoint = dict(type='CheckpointHook', interval=2)
    if out_dir is not None:
        checkpoint['out_dir'] = str(out_dir)
    return Config(dict(
        work_dir=str(work_dir), launcher='none', resume=resume, load_from=load_from,
        model=dict(type='Tiny', channels=4),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        train_dataloader=dict(dataset=dict(pipeline=[
            dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=prob)])),
        default_hooks=dict(checkpoint=checkpoint)))


def _trained(work_dir, **kwargs):
    """A work dir as a finished run leaves it: its record, iter_2.pth and last_checkpoint."""
    check_work_dir_record(_cfg(work_dir, **kwargs), None)
    os.makedirs(work_dir, exist_ok=True)
    ckpt = osp.join(work_dir, 'iter_2.pth')
    with open(ckpt, 'wb') as f:
        f.write(b'weights')
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(ckpt)
    return ckpt


def test_resume_path_from_a_folder_of_other_settings_stops(tmp_path):
    # was: --resume other/iter_2.pth with another lr continued silently and recorded the new
    # lr as if the whole training had used it
    ckpt = _trained(tmp_path / 'a', lr=0.01)
    cfg = _cfg(tmp_path / 'b', lr=0.5, resume=True, load_from=ckpt)
    with pytest.raises(ProvenanceError, match=r'optim_wrapper.optimizer.lr: 0.01 -> 0.5'):
        check_work_dir_record(cfg, None)
    assert not osp.exists(tmp_path / 'b' / 'provenance.json')
    check_work_dir_record(cfg, None, accept_config_change=True)
    # the same settings resume as before
    check_work_dir_record(_cfg(tmp_path / 'c', lr=0.01, resume=True, load_from=ckpt), None)


def test_checkpoint_out_dir_shared_by_work_dirs_of_one_name_is_checked(tmp_path):
    # was: /x/w and /y/w with one out_dir both write <out_dir>/w; the second replaced the
    # first's checkpoints, of other settings, silently
    out_dir = tmp_path / 'ckpts'
    cfg = _cfg(tmp_path / 'x' / 'w', out_dir=out_dir)
    assert checkpoint_folder(cfg, cfg.work_dir) == str(out_dir / 'w')
    _trained(out_dir / 'w')  # what the checkpoint hook writes there
    check_work_dir_record(cfg, None)
    assert osp.isfile(out_dir / 'w' / 'provenance.json')
    with pytest.raises(ProvenanceError, match='default_hooks.checkpoint.out_dir'):
        check_work_dir_record(_cfg(tmp_path / 'y' / 'w', lr=0.5, out_dir=out_dir), None)
    check_work_dir_record(_cfg(tmp_path / 'y' / 'w', lr=0.5, out_dir=out_dir), None,
                          overwrite=True)
    assert not osp.exists(out_dir / 'w' / 'iter_2.pth')  # --overwrite clears it too


def test_checkpoint_out_dir_is_locked(tmp_path):
    checkpoint_dir = str(tmp_path / 'ckpts' / 'w')
    with FolderLock(checkpoint_dir, 'default_hooks.checkpoint.out_dir'):
        with pytest.raises(FolderInUseError, match='default_hooks.checkpoint.out_dir'):
            with claim_work_dir(str(tmp_path / 'y' / 'w'), 'none', checkpoint_dir):
                pass


def test_train_locks_the_checkpoint_out_dir(tmp_path):
    # through tools/train.py: the lock is taken before the data roots are checked (a tiny
    # run under tmp_path, should it not be)
    checkpoint_dir = str(tmp_path / 'ckpts' / 'w')
    data = tmp_path / 'data'
    tiny = [f'{loader}.dataset.{key}' for loader in ('train_dataloader', 'val_dataloader')
            for key in (f'data_root={data}', 'num_train=2', 'num_val=1',
                        'image_size=(32,64)')]
    with FolderLock(checkpoint_dir, 'default_hooks.checkpoint.out_dir'):
        proc = subprocess.run(
            [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'w'),
             '--cfg-options', f'default_hooks.checkpoint.out_dir={tmp_path / "ckpts"}',
             'train_cfg.max_iters=1', *tiny],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'is in use by another run' in proc.stderr.splitlines()[-1]


def test_overwrite_deletes_only_mmengine_checkpoint_names(tmp_path):
    # was: best_*.pth, so a hand-kept best_by_hand.pth was deleted too
    work_dir = tmp_path / 'w'
    _trained(work_dir, lr=0.01)
    for name in ('best_by_hand.pth', 'best_mIoU_iter_2.pth'):
        (work_dir / name).write_bytes(b'x')
    check_work_dir_record(_cfg(work_dir, lr=0.5), None, overwrite=True)
    assert sorted(os.listdir(work_dir)) == ['best_by_hand.pth', 'provenance.json']


def test_lock_file_that_is_a_symlink_is_not_written_through(tmp_path):
    # was: the holder's pid and command line overwrote the file the link points to
    target = tmp_path / 'precious.txt'
    target.write_text('precious')
    work_dir = tmp_path / 'w'
    work_dir.mkdir()
    (work_dir / '.mmaffseg.lock').symlink_to(target)
    with pytest.raises(OutputDirError, match='is a symbolic link'):
        FolderLock(str(work_dir), '--work-dir').acquire()
    assert target.read_text() == 'precious'


def test_lock_file_that_is_a_folder_is_one_line(tmp_path):
    # was: a raw IsADirectoryError traceback
    (tmp_path / '.mmaffseg.lock').mkdir()
    with pytest.raises(OutputDirError, match='is a folder'):
        FolderLock(str(tmp_path), '--work-dir').acquire()


@pytest.mark.parametrize('flags', [dict(overwrite=True), dict(accept_config_change=True)])
def test_record_that_is_a_folder_is_one_line_and_kept(tmp_path, flags):
    # was: --overwrite / --accept-config-change (which the message advised) crashed with
    # IsADirectoryError
    work_dir = tmp_path / 'w'
    ckpt = _trained(work_dir)
    os.remove(work_dir / 'provenance.json')
    (work_dir / 'provenance.json').mkdir()
    (work_dir / 'provenance.json' / 'notes.txt').write_text('mine')
    resume = bool(flags.get('accept_config_change'))
    with pytest.raises(ProvenanceError, match='is not a file'):
        check_work_dir_record(_cfg(work_dir, resume=resume, load_from=ckpt if resume else None),
                              None, **flags)
    assert (work_dir / 'provenance.json' / 'notes.txt').read_text() == 'mine'


def test_unreadable_record_without_checkpoints_is_replaced(tmp_path):
    # was: "rerun with --overwrite", and --overwrite gave the same error again
    work_dir = tmp_path / 'w'
    work_dir.mkdir()
    (work_dir / 'provenance.json').write_text('garbage')
    check_work_dir_record(_cfg(work_dir), None)
    record = json.loads((work_dir / 'provenance.json').read_text())
    assert record['stages']['train']['optim_wrapper.optimizer.lr'] == 0.01


@pytest.mark.parametrize('stage', ['"x"', 'null', '[1]'])
def test_record_whose_train_stage_is_not_a_mapping(tmp_path, stage):
    # was: "x" a raw AttributeError, null accepted as no record at all
    work_dir = tmp_path / 'w'
    ckpt = _trained(work_dir)
    (work_dir / 'provenance.json').write_text(
        '{"format": 1, "stages": {"train": %s}}' % stage)
    with pytest.raises(ProvenanceError, match='cannot be read'):
        check_work_dir_record(_cfg(work_dir), None)
    with pytest.raises(ProvenanceError, match='cannot be read'):
        check_work_dir_record(_cfg(work_dir, resume=True, load_from=ckpt), None)
    check_work_dir_record(_cfg(work_dir), None, overwrite=True)


def test_changed_pipeline_setting_is_named(tmp_path):
    # was: "train_dataloader.dataset.pipeline: [{"type": "LoadImageFromFile"}... -> [{"type":
    # "LoadImageFromFile"}...", the same text on both sides
    work_dir = tmp_path / 'w'
    ckpt = _trained(work_dir, prob=0.5)
    with pytest.raises(ProvenanceError) as info:
        check_work_dir_record(_cfg(work_dir, prob=0.0, resume=True, load_from=ckpt), None)
    assert 'train_dataloader.dataset.pipeline.1.prob: 0.5 -> 0.0' in str(info.value)
    assert describe_changes({'a': [{'b': 1}]}, {'a': [{'b': 1, 'c': 2}]}) == \
        'a.0.c: "<absent>" -> 2'
    assert describe_changes({'a': [1]}, {'a': [1, 2]}) == 'a: [1] -> [1, 2]'


def _runner(tmp_path):
    return SimpleNamespace(iter=1, work_dir=str(tmp_path), logger=logging.getLogger('red'))


def test_checkpoint_with_non_finite_optimizer_state_is_not_saved(tmp_path):
    # was: saved (an inf Adam second moment freezes its weights; loss and weights stay
    # finite), and last_checkpoint named it
    hook = FiniteCheckHook()
    state = {'state_dict': {'w': torch.ones(2)}, 'meta': {'iter': 2},
             'optimizer': {'state': {0: {'step': torch.tensor(2.),
                                         'exp_avg': torch.ones(2),
                                         'exp_avg_sq': torch.tensor([1., float('inf')])}},
                           'param_groups': [{'lr': 0.1, 'params': [0]}]}}
    with pytest.raises(NonFiniteError, match=r'optimizer state is non-finite \(optimizer.state'
                       r'.0.exp_avg_sq \(0 NaN, 1 inf of 2 values\)'):
        hook.before_save_checkpoint(_runner(tmp_path), state)
    state['optimizer']['state'][0]['exp_avg_sq'] = torch.ones(2)
    hook.before_save_checkpoint(_runner(tmp_path), state)


def test_full_disk_outside_checkpoint_writes_is_one_line(tmp_path):
    # was: a raw OSError traceback when the disk filled before the first checkpoint (writing
    # provenance.json or the dumped config)
    with pytest.raises(OutputDirError, match=r'is full .* while writing a file of the run'):
        with claim_work_dir(str(tmp_path / 'w')):
            raise OSError(errno.ENOSPC, 'No space left on device')
    with pytest.raises(OutputDirError, match=r'while writing x.py'):
        with claim_work_dir(str(tmp_path / 'w')):
            raise OSError(errno.ENOSPC, 'No space left on device', str(tmp_path / 'w' / 'x.py'))
    with pytest.raises(PermissionError):  # other errors are left alone
        with claim_work_dir(str(tmp_path / 'w')):
            raise PermissionError(errno.EACCES, 'denied')
