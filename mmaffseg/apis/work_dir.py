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
from ..utils.folder_lock import FolderLock
from ..utils.output_folder import check_output_folder
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
#: What a training writes into its work dir that another config's run would replace.
CHECKPOINT_FILE = re.compile(r'^((iter|epoch)_\d+|best_.+)\.pth$')
POINTER = 'last_checkpoint'


@contextlib.contextmanager
def claim_work_dir(work_dir: str, launcher: str = 'none') -> Iterator[Optional[FolderLock]]:
    """Make this run the only writer of ``work_dir`` for the ``with`` block, before anything is
    written to it.

    Every process checks that the folder can be written (:func:`check_output_folder`) and gets
    SIGTERM/SIGINT handlers that remove the temporary files of its checkpoint writes in
    progress; the process of rank 0 takes the lock and sweeps the temporary files a killed run
    left.

    Args:
        work_dir (str): The work dir.
        launcher (str): ``--launcher`` (``none``, ``pytorch``, ``slurm``, ``mpi``).

    Yields:
        FolderLock | None: The held lock (released at the end of the block; the OS releases it
        when the process ends, however it ends), None on the other ranks.

    Raises:
        OutputDirError: The folder cannot be created or written.
        FolderInUseError: Another run holds the work dir (an :class:`OutputDirError`).
    """
    check_output_folder(work_dir, ARGUMENT)
    remove_temp_files_on_signals()
    if launch_rank(launcher) != 0:
        yield None
        return
    with FolderLock(work_dir, ARGUMENT) as lock:
        swept = sweep_stale_temp_files(work_dir)
        if swept:
            print_log(f'{work_dir}: removed {len(swept)} temporary file(s) of an interrupted '
                      f'run ({", ".join(osp.basename(p) for p in swept)})', logger='current')
        yield lock


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
    """The checkpoints (and ``last_checkpoint``) of a work dir."""
    try:
        names = os.listdir(work_dir)
    except OSError:
        return []
    return sorted(osp.join(work_dir, n) for n in names if CHECKPOINT_FILE.match(n) or n == POINTER)


def check_work_dir_record(cfg: Config, config_load_from: Optional[str], overwrite: bool = False,
                          accept_config_change: bool = False) -> None:
    """Compare the run's settings with the work dir's record, then record them.

    Call it with :func:`claim_work_dir`'s lock held, after ``prepare_train_cfg`` (``cfg.resume``
    says whether the run resumes); only the process of rank 0 checks and writes.

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
    resumes_from_it = cfg.get('resume') and cfg.get('load_from') == config_load_from
    prov = Provenance(work_dir, ARGUMENT, 'train', overwrite_hint='--overwrite')
    prov.stage(STAGE, training_inputs(cfg, None if resumes_from_it else config_load_from))
    checkpoints = work_dir_checkpoints(work_dir)
    new = prov.inputs(STAGE)
    old = _recorded_inputs(prov, cfg.get('resume'), overwrite, accept_config_change) \
        if checkpoints else new
    if old is None:
        print_log(f'{work_dir} holds checkpoints but no provenance record (an older mmaffseg '
                  'made them): recording the current settings', logger='current', level=30)
    elif old != new:
        changes = describe_changes(old, new)
        if cfg.get('resume'):
            if not accept_config_change:
                raise ProvenanceError(
                    errno.EEXIST, f'--resume: the work dir {work_dir} holds a training of other '
                    f'settings ({changes}). Resume with the settings it was made with, add '
                    '--accept-config-change to continue it with the new ones, or train afresh '
                    f'in another {ARGUMENT}')
            print_log(f'--accept-config-change: resuming {work_dir} with changed settings '
                      f'({changes})', logger='current', level=30)
        else:
            if not overwrite:
                raise ProvenanceError(
                    errno.EEXIST, f'{ARGUMENT}: the folder {work_dir} holds checkpoints of a '
                    f'training with other settings ({changes}), which this run would replace. '
                    'Rerun with --overwrite to delete them and start afresh, or choose another '
                    f'{ARGUMENT}')
            for path in checkpoints:
                os.remove(path)
            print_log(f'--overwrite: deleted {len(checkpoints)} checkpoint file(s) of other '
                      f'settings in {work_dir} ({changes})', logger='current', level=30)
    prov.write()


def _recorded_inputs(prov: Provenance, resuming: bool, overwrite: bool,
                     accept_config_change: bool) -> Optional[Dict[str, Any]]:
    """The work dir's recorded inputs (None without a record); an unreadable record is removed
    under the matching override (and compares as recording nothing), an error otherwise."""
    try:
        return (prov.recorded() or {}).get(STAGE)
    except ProvenanceError:
        if not (accept_config_change if resuming else overwrite):
            if not resuming:
                raise  # its message names --overwrite
            raise ProvenanceError(
                errno.EINVAL, f'--resume: the provenance record {prov.path} cannot be read, so '
                'the settings of the checkpoints there are unknown. Add --accept-config-change '
                f'to resume anyway, or train afresh in another {ARGUMENT}') from None
        os.remove(prov.path)
        return {}
