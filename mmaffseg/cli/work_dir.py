# Copyright (c) mmaffseg contributors. All rights reserved.
"""A training's work dir: one run at a time, and reused only by the settings that made it.

``tools/train.py`` (:func:`claim_work_dir`, then :func:`check_work_dir_record`):

* takes the folder's lock (:class:`~mmaffseg.utils.folder_lock.FolderLock`) before anything
  is written: a second run into the same ``--work-dir`` stops at once, naming the running one.
  In a distributed run the process of rank 0 holds it for all (they share the folder);
* removes the temporary files that a killed run's checkpoint writes left (ours, by name and
  age), and makes SIGTERM/SIGINT remove those of the writes in progress;
* keeps a provenance record of what the checkpoints depend on (``provenance.json``, stage
  ``train``): the config's settings that change the trained weights (:func:`training_inputs`:
  not logging, checkpointing, validation, workers or the run's length), the sha256 of the
  ``load_from`` checkpoint and the mmaffseg version. ``--resume`` with other settings stops
  with exit status 2 naming each change unless ``--accept-config-change`` is given; a fresh
  run into a work dir holding checkpoints of other settings stops too unless ``--overwrite``
  is given (which deletes them). Rerunning the same settings works as in mmseg.

A checkpoint folder outside the work dir (``default_hooks.checkpoint.out_dir``: mmengine writes
``<out_dir>/<the work dir's name>``, which two work dirs of one name share) is locked, checked
and recorded like the work dir; a checkpoint resumed from another folder must match that
folder's record. A disk that fills up during the run is one line naming the folder.
"""
import contextlib
import copy
import errno
import os
import os.path as osp
import re
from typing import Any, Dict, Iterator, List, Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..utils.atomic_io import remove_temp_files_on_signals, sweep_stale_temp_files
from ..utils.config_errors import OutputDirError
from ..utils.folder_lock import FolderLock
from ..utils.output_folder import DISK_FULL_ERRNOS, check_output_folder, disk_full_error
from ..utils.provenance import (
    Provenance,
    ProvenanceError,
    describe_changes,
    file_sha256,
    flatten_settings,
)
from .cpu_distributed import launch_rank
from .runner_setup import use_checked_image_loading

ARGUMENT = '--work-dir'
STAGE = 'train'
#: Config keys (and everything under them) that do not change the trained weights: where
#: and how often results are written and logged, validation and testing, the launcher, data
#: loading workers and the run's length (resuming with a longer schedule is legitimate).
NOT_RESULT_KEYS = (
    'work_dir', 'launcher', 'resume', 'load_from', 'default_hooks', 'visualizer',
    'vis_backends', 'log_processor', 'log_level', 'env_cfg', 'model_wrapper_cfg',
    'find_unused_parameters', 'val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader',
    'test_evaluator', 'test_cfg', 'test_pipeline', 'tta_model', 'tta_pipeline', 'img_ratios',
    'train_cfg.max_iters', 'train_cfg.max_epochs', 'train_cfg.val_interval',
    'train_cfg.val_begin', 'train_cfg.dynamic_intervals', 'train_dataloader.num_workers',
    'train_dataloader.persistent_workers', 'train_dataloader.pin_memory')
#: Hooks that only check (they never change the weights of a training that passes them).
CHECK_ONLY_HOOKS = ('NumClassesCheckHook', 'CheckpointCheckHook', 'FiniteCheckHook')
#: What a training writes into its work dir that another config's run would replace (mmengine's
#: names: ``iter_N.pth``, ``epoch_N.pth``, ``best_<metric>_iter_N.pth``), nothing else.
CHECKPOINT_FILE = re.compile(r'^((iter|epoch)_\d+|best_.+_(iter|epoch)_\d+)\.pth$')
POINTER = 'last_checkpoint'
OUT_DIR_ARGUMENT = 'default_hooks.checkpoint.out_dir'


def checkpoint_folder(cfg: Config, work_dir: str) -> Optional[str]:
    """The local folder the checkpoints go to when it is not the work dir: with
    ``default_hooks.checkpoint.out_dir``, ``<out_dir>/<the work dir's name>`` (as mmengine's
    ``CheckpointHook``), else None (also for a remote ``out_dir``)."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    out_dir = hook.get('out_dir') if isinstance(hook, dict) else None
    work_dir = osp.abspath(work_dir)
    if out_dir is None or '://' in str(out_dir) or str(out_dir) == work_dir:
        return None
    return osp.join(str(out_dir), osp.basename(work_dir.rstrip(osp.sep)))


@contextlib.contextmanager
def _disk_full_exits(work_dir: str) -> Iterator[None]:
    """A full disk anywhere in the run (the record, the dumped config, the logs; checkpoints
    have their own message) is one line naming the folder and its free space."""
    try:
        yield
    except OSError as e:
        if isinstance(e, OutputDirError) or e.errno not in DISK_FULL_ERRNOS:
            raise
        name = e.filename if isinstance(e.filename, str) else None
        raise disk_full_error(
            osp.dirname(name) if name else work_dir,
            osp.basename(name) if name else 'a file of the run',
            'free some space and rerun (with --resume to continue from the last checkpoint, if '
            'there is one)') from None


@contextlib.contextmanager
def claim_work_dir(work_dir: str, launcher: str = 'none',
                   checkpoint_dir: Optional[str] = None) -> Iterator[Optional[FolderLock]]:
    """Make this run the only writer of ``work_dir`` (and of its checkpoint folder, when that
    is elsewhere) for the ``with`` block, before anything is written to it.

    Every process checks that the folder can be written (:func:`check_output_folder`) and gets
    SIGTERM/SIGINT handlers that remove the temporary files of its checkpoint writes in
    progress; the process of rank 0 takes the lock(s) and sweeps the temporary files a killed
    run left. A disk that fills up in the block (other than while writing a checkpoint, which
    says so itself) is an :class:`OutputDirError` naming the folder and its free space.

    Args:
        work_dir (str): The work dir.
        launcher (str): ``--launcher`` (``none``, ``pytorch``, ``slurm``, ``mpi``).
        checkpoint_dir (str, optional): :func:`checkpoint_folder`, when it is not the work dir.

    Yields:
        FolderLock | None: The held lock (released at the end of the block; the OS releases it
        when the process ends, however it ends), None on the other ranks.

    Raises:
        OutputDirError: The folder cannot be created or written.
        FolderInUseError: Another run holds the work dir (an :class:`OutputDirError`).
    """
    folders = {work_dir: ARGUMENT}
    if checkpoint_dir is not None:
        folders[checkpoint_dir] = OUT_DIR_ARGUMENT
    for folder, argument in folders.items():
        check_output_folder(folder, argument)
    remove_temp_files_on_signals()
    if launch_rank(launcher) != 0:
        with _disk_full_exits(work_dir):
            yield None
        return
    with contextlib.ExitStack() as stack:
        locks = [stack.enter_context(FolderLock(folder, argument))
                 for folder, argument in folders.items()]
        for folder in folders:
            swept = sweep_stale_temp_files(folder)
            if swept:
                print_log(f'{folder}: removed {len(swept)} temporary file(s) of an interrupted '
                          f'run ({", ".join(osp.basename(p) for p in swept)})',
                          logger='current')
        with _disk_full_exits(work_dir):
            yield locks[0]


def _checkpoint_identity(path: Optional[str]) -> Optional[str]:
    """A local checkpoint's contents hash; a URL (or nothing) as given."""
    if path and '://' not in path and osp.isfile(path):
        return file_sha256(path)
    return path or None


def _is_result_key(key: str) -> bool:
    return not any(key == k or key.startswith(k + '.') for k in NOT_RESULT_KEYS)


def training_inputs(cfg: Config, init_checkpoint: Optional[str]) -> Dict[str, Any]:
    """What the trained weights depend on: the config's settings that change them (dotted
    keys, without :data:`NOT_RESULT_KEYS` and check-only hooks) and the initial checkpoint.

    Args:
        cfg (Config): The prepared training config.
        init_checkpoint (str, optional): The ``load_from`` weights training starts from (not
            the checkpoint it resumes from).

    Returns:
        dict: Dotted keys -> JSON values; ``load_from`` is the checkpoint's sha256.
    """
    cfg = copy.deepcopy(cfg)
    use_checked_image_loading(cfg)  # the same loaders whether the tools swapped them in yet
    settings = {k: v for k, v in flatten_settings(cfg.to_dict()).items() if _is_result_key(k)}
    if 'custom_hooks' in settings:
        settings['custom_hooks'] = [h for h in settings['custom_hooks'] or []
                                    if not (isinstance(h, dict)
                                            and h.get('type') in CHECK_ONLY_HOOKS)]
    settings['load_from'] = _checkpoint_identity(init_checkpoint)
    return settings


def work_dir_checkpoints(work_dir: str) -> List[str]:
    """The checkpoint files (and ``last_checkpoint``) of a work dir or checkpoint folder."""
    try:
        names = os.listdir(work_dir)
    except OSError:
        return []
    return sorted(osp.join(work_dir, n) for n in names
                  if (CHECKPOINT_FILE.match(n) or n == POINTER)
                  and not osp.isdir(osp.join(work_dir, n)))


def check_work_dir_record(cfg: Config, config_load_from: Optional[str], overwrite: bool = False,
                          accept_config_change: bool = False) -> None:
    """Compare the run's settings with the work dir's record, then record them.

    Call it with :func:`claim_work_dir`'s lock held, after ``prepare_train_cfg`` (``cfg.resume``
    says whether the run resumes); only the process of rank 0 checks and writes. A checkpoint
    folder elsewhere (``default_hooks.checkpoint.out_dir``) is checked and recorded the same
    way, and so is the folder of a checkpoint resumed from outside them.

    Args:
        cfg (Config): The prepared training config.
        config_load_from (str, optional): The config's ``load_from`` before ``--resume``
            replaced it: the initial weights, unless the run resumes from it.
        overwrite (bool): A fresh run may replace checkpoints of other settings (they are
            deleted first).
        accept_config_change (bool): ``--resume`` may continue a training of other settings.

    Raises:
        ProvenanceError: The work dir holds checkpoints of other settings and the matching
            override is not given.
    """
    if launch_rank(cfg.get('launcher', 'none')) != 0:
        return
    work_dir = cfg.work_dir
    resuming = bool(cfg.get('resume'))
    resumes_from_it = resuming and cfg.get('load_from') == config_load_from
    inputs = training_inputs(cfg, None if resumes_from_it else config_load_from)
    folders = {work_dir: ARGUMENT}
    checkpoint_dir = checkpoint_folder(cfg, work_dir)
    if checkpoint_dir is not None:
        folders[checkpoint_dir] = OUT_DIR_ARGUMENT
    records, replaced = [], []
    for folder, argument in folders.items():
        prov = Provenance(folder, argument, 'train', overwrite_hint='--overwrite')
        prov.stage(STAGE, inputs)
        replaced += _check_folder(prov, resuming, overwrite, accept_config_change)
        records.append(prov)
    if resuming:
        _check_resumed_checkpoint(cfg.get('load_from'), list(folders), records[0].inputs(STAGE),
                                  accept_config_change)
    for path in replaced:  # only once every folder passed its check
        os.remove(path)
    for prov in records:
        prov.write()


def _check_folder(prov: Provenance, resuming: bool, overwrite: bool,
                  accept_config_change: bool) -> List[str]:
    """Compare one folder's record with the new inputs (see :func:`check_work_dir_record`);
    return the checkpoint files ``--overwrite`` deletes."""
    folder = prov.folder
    what = 'work dir' if prov.argument == ARGUMENT else f'checkpoint folder ({prov.argument})'
    checkpoints = work_dir_checkpoints(folder)
    new = prov.inputs(STAGE)
    recorded = _recorded_inputs(prov, resuming, overwrite, accept_config_change,
                                bool(checkpoints))
    old = recorded if checkpoints else new
    if old is None:
        print_log(f'{folder} holds checkpoints but no provenance record (an older mmaffseg '
                  'made them): recording the current settings', logger='current', level=30)
    elif old != new:
        changes = describe_changes(old, new)
        if resuming:
            if not accept_config_change:
                raise ProvenanceError(
                    errno.EEXIST, f'--resume: the {what} {folder} holds a training of other '
                    f'settings ({changes}). Resume with the settings it was made with, add '
                    '--accept-config-change to continue it with the new ones, or train afresh '
                    f'in another {ARGUMENT}')
            print_log(f'--accept-config-change: resuming {folder} with changed settings '
                      f'({changes})', logger='current', level=30)
        else:
            if not overwrite:
                raise ProvenanceError(
                    errno.EEXIST, f'{prov.argument}: the folder {folder} holds checkpoints of a '
                    f'training with other settings ({changes}), which this run would replace. '
                    'Rerun with --overwrite to delete them and start afresh, or choose another '
                    f'{prov.argument}')
            print_log(f'--overwrite: deleting {len(checkpoints)} checkpoint file(s) of other '
                      f'settings in {folder} ({changes})', logger='current', level=30)
            return checkpoints
    return []


def _check_resumed_checkpoint(checkpoint: Optional[str], folders: List[str], new: Dict[str, Any],
                              accept_config_change: bool) -> None:
    """A checkpoint resumed from another folder (``--resume PATH``, or a ``last_checkpoint``
    naming one) must match the record of the folder it was trained in, if that has one."""
    if not checkpoint or '://' in checkpoint or not osp.isfile(checkpoint):
        return
    folder = osp.dirname(osp.realpath(checkpoint))
    if folder in {osp.realpath(f) for f in folders}:
        return  # the work dir's own record, checked already
    prov = Provenance(folder, '--resume', 'train')
    try:
        old = (prov.recorded() or {}).get(STAGE)
        if old is None or old == new:
            return  # no record there (an older mmaffseg, a copied file): nothing to compare
        changes = (describe_changes(old, new) if isinstance(old, dict) else
                   f'its stage {STAGE!r} is not a mapping')
    except ProvenanceError:
        changes = f'its record {prov.path} cannot be read'
    if accept_config_change:
        print_log(f'--accept-config-change: resuming {checkpoint} with changed settings '
                  f'({changes})', logger='current', level=30)
        return
    raise ProvenanceError(
        errno.EEXIST, f'--resume: the checkpoint {checkpoint} was trained with other settings '
        f'({changes}; recorded in {folder}). Resume with the settings it was made with, add '
        '--accept-config-change to continue it with the new ones, or train afresh')


def _recorded_inputs(prov: Provenance, resuming: bool, overwrite: bool,
                     accept_config_change: bool,
                     has_checkpoints: bool) -> Optional[Dict[str, Any]]:
    """The folder's recorded inputs (None without a record). An unreadable record is an error
    when checkpoints depend on it and the matching override is not given; otherwise it is
    removed (and compares as recording nothing). A record that is not a file (a folder) is
    never removed: it is not ours."""
    if osp.lexists(prov.path) and not osp.isfile(prov.path):
        raise ProvenanceError(
            errno.EISDIR, f'{prov.argument}: the provenance record {prov.path} is not a file; '
            f'move it out of the way (it is not deleted for you), or choose another '
            f'{prov.argument}')
    try:
        recorded = prov.recorded() or {}
        if STAGE in recorded and not isinstance(recorded[STAGE], dict):
            raise ProvenanceError(
                errno.EINVAL, f'{prov.argument}: the provenance record {prov.path} cannot be '
                f'read (its stage {STAGE!r} is not a mapping); rerun with --overwrite to '
                f'recompute everything, or choose another {prov.argument}')
        return recorded.get(STAGE)
    except ProvenanceError:
        if has_checkpoints and not (accept_config_change if resuming else overwrite):
            if not resuming:
                raise  # its message names --overwrite
            raise ProvenanceError(
                errno.EINVAL, f'--resume: the provenance record {prov.path} cannot be read, so '
                'the settings of the checkpoints there are unknown. Add --accept-config-change '
                f'to resume anyway, or train afresh in another {ARGUMENT}') from None
        os.remove(prov.path)
        if not has_checkpoints:
            print_log(f'{prov.folder}: replaced an unreadable provenance record (no checkpoint '
                      'depends on it)', logger='current', level=30)
        return {}
