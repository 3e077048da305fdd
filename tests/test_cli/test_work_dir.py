# Copyright (c) mmaffseg contributors. All rights reserved.
"""A training's work dir: its provenance record (what changes the weights, what does not), the
refusals and overrides, the finite check and the per-rank lock."""
import json
import os.path as osp

import pytest
import torch

from mmaffseg.cli import (
    check_work_dir_record,
    claim_work_dir,
    launch_rank,
    load_config,
    prepare_train_cfg,
)
from mmaffseg.cli.work_dir import training_inputs
from mmaffseg.utils.folder_lock import FolderInUseError
from mmaffseg.utils.provenance import ProvenanceError, file_sha256

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QUICKSTART = osp.join(REPO, 'configs', 'quickstart',
                      'deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py')


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('MMAFFSEG_CACHE_DIR', str(tmp_path / 'cache'))


def _cfg(work_dir, options=None, resume=None):
    cfg = load_config(QUICKSTART, options)
    return prepare_train_cfg(cfg, QUICKSTART, str(work_dir), resume)


def test_training_inputs_keep_what_changes_the_weights(tmp_path):
    cfg = _cfg(tmp_path)
    inputs = training_inputs(cfg, None)
    assert inputs['optim_wrapper.optimizer.lr'] == 2e-3
    assert inputs['model.backbone.depth'] == 18 and inputs['randomness.seed'] == 0
    assert inputs['load_from'] is None
    for key in inputs:  # run length, logging, checkpointing, validation, workers: not kept
        assert not key.startswith(('default_hooks', 'work_dir', 'val_', 'visualizer',
                                   'train_cfg.max_iters', 'train_cfg.val_interval',
                                   'train_dataloader.num_workers')), key
    other = _cfg(tmp_path / 'other', {'train_cfg.max_iters': 600, 'train_cfg.val_interval': 7,
                                      'default_hooks.checkpoint.interval': 3,
                                      'train_dataloader.num_workers': 0,
                                      'default_hooks.finite_check.patience': 3})
    assert training_inputs(other, None) == inputs
    ckpt = tmp_path / 'init.pth'
    torch.save(dict(state_dict={}), ckpt)
    assert training_inputs(cfg, str(ckpt))['load_from'] == file_sha256(str(ckpt))


def _checkpoint(work_dir, name='iter_2.pth'):
    path = osp.join(work_dir, name)
    torch.save(dict(state_dict={}, meta=dict(iter=2, epoch=0)), path)
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(path)
    return path


def test_a_fresh_run_over_other_settings_is_refused_unless_overwrite(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    check_work_dir_record(_cfg(work), None)
    ckpt = _checkpoint(str(work))
    check_work_dir_record(_cfg(work), None)  # the same settings again: as mmseg, fine
    changed = _cfg(work, {'optim_wrapper.optimizer.lr': 0.01})
    with pytest.raises(ProvenanceError) as info:
        check_work_dir_record(changed, None)
    message = info.value.strerror
    assert message.startswith(f'--work-dir: the folder {work} holds checkpoints of a training '
                              'with other settings (optim_wrapper.optimizer.lr: 0.002 -> 0.01)')
    assert '--overwrite' in message
    assert osp.exists(ckpt)
    check_work_dir_record(changed, None, overwrite=True)
    assert not osp.exists(ckpt) and not osp.exists(work / 'last_checkpoint')
    record = json.loads((work / 'provenance.json').read_text())
    assert record['stages']['train']['optim_wrapper.optimizer.lr'] == 0.01


def test_resume_with_other_settings_is_refused_unless_accepted(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    check_work_dir_record(_cfg(work), None)
    ckpt = _checkpoint(str(work))
    check_work_dir_record(_cfg(work, {'train_cfg.max_iters': 600}, resume='auto'), None)
    changed = _cfg(work, {'model.decode_head.dropout_ratio': 0.5}, resume='auto')
    assert changed.resume and changed.load_from == ckpt
    with pytest.raises(ProvenanceError) as info:
        check_work_dir_record(changed, None)
    message = info.value.strerror
    assert message.startswith(f'--resume: the work dir {work} holds a training of other '
                              'settings (model.decode_head.dropout_ratio: 0.1 -> 0.5)')
    assert '--accept-config-change' in message
    check_work_dir_record(changed, None, accept_config_change=True)
    check_work_dir_record(changed, None)  # recorded: the next resume matches


def test_a_new_load_from_checkpoint_is_a_change(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    init = tmp_path / 'init.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(1))), init)
    check_work_dir_record(_cfg(work), str(init))
    _checkpoint(str(work))
    torch.save(dict(state_dict=dict(w=torch.ones(1))), init)  # other contents, same path
    with pytest.raises(ProvenanceError, match=r'load_from: sha256:\w+ -> sha256:'):
        check_work_dir_record(_cfg(work), str(init))


def test_checkpoints_without_a_record_are_accepted_and_recorded(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    _checkpoint(str(work))  # made by an older version
    check_work_dir_record(_cfg(work), None)
    assert (work / 'provenance.json').exists()


def test_an_unreadable_record_needs_the_override(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    ckpt = _checkpoint(str(work))
    (work / 'provenance.json').write_text('{"stages": ')  # cut short
    with pytest.raises(ProvenanceError, match='cannot be read.*--overwrite'):
        check_work_dir_record(_cfg(work), None)
    resumed = _cfg(work, resume='auto')
    with pytest.raises(ProvenanceError, match='--resume: the provenance record .* cannot be read'
                       '.*--accept-config-change'):
        check_work_dir_record(resumed, None)
    check_work_dir_record(resumed, None, accept_config_change=True)
    assert osp.exists(ckpt)
    check_work_dir_record(_cfg(work), None)  # readable again, and matching
    (work / 'provenance.json').write_text('not json')
    check_work_dir_record(_cfg(work), None, overwrite=True)
    assert not osp.exists(ckpt)


def test_only_rank_0_locks_and_records(tmp_path, monkeypatch):
    import mmaffseg.cli.work_dir as work_dir
    monkeypatch.setattr(work_dir, 'remove_temp_files_on_signals', lambda: None)  # the tool's
    monkeypatch.setenv('RANK', '1')
    assert launch_rank('pytorch') == 1 and launch_rank('none') == 0
    work = tmp_path / 'work'
    with claim_work_dir(str(work), 'pytorch') as lock:
        assert lock is None
        cfg = _cfg(work)
        cfg.launcher = 'pytorch'
        check_work_dir_record(cfg, None)
        assert not (work / 'provenance.json').exists()
    monkeypatch.setenv('RANK', '0')
    with claim_work_dir(str(work), 'pytorch') as lock:
        assert lock.held
        with pytest.raises(FolderInUseError, match=f'--work-dir: the folder {work} is in use'):
            with claim_work_dir(str(work), 'none'):
                pass
    assert not lock.held
