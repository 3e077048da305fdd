# Copyright (c) mmaffseg contributors. All rights reserved.
"""Claiming an output folder before any work: its lock, then its provenance record.

A run that fills a folder stage by stage (pseudo labels, a parameter search, a benchmark suite)
calls :func:`claim_folder` once, before any work:

1. it takes the folder's :class:`~mmaffseg.utils.folder_lock.FolderLock` (a second run into the
   folder stops at once, naming the holder);
2. it checks the :class:`~mmaffseg.utils.provenance.Provenance` of the stages that have files
   there: a mismatch stops the run (:class:`~mmaffseg.utils.provenance.ProvenanceError`) unless
   the user asked to recompute, in which case exactly the mismatching stages' files are removed;
3. it removes the files every run rewrites from the current outputs (reports, a search result),
   so that a killed run never leaves one that describes other outputs;
4. it writes the record, so that the partial outputs of a run killed later are covered by it.

Under a distributed launcher every rank writes into the same folder: rank 0 claims it for all
(:func:`claim_folder_for_all_ranks`) and shares the outcome, so the ranks never refuse each other,
stop together with the same error, and none writes before the stale files are gone.
"""
import errno
import os
import os.path as osp
import shutil
from typing import Callable, List, Mapping, Optional, Sequence

from .config_errors import OutputDirError
from .folder_lock import FolderLock
from .provenance import Provenance


class FolderClaim:
    """A claimed output folder: the lock held (rank 0) and the stages cleared for recomputing.

    Release it when the run ends (or use it as a context manager); the kernel also releases
    the lock when the process ends, however it ends.

    Args:
        lock (FolderLock, optional): The held lock; None on the ranks that do not hold it.
        cleared (list[str]): The stages whose files were removed to be recomputed.
    """

    def __init__(self, lock: Optional[FolderLock], cleared: List[str]) -> None:
        self.lock = lock
        self.cleared = cleared

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> 'FolderClaim':
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def has_files(path: str) -> bool:
    """Whether ``path`` is a file, or a folder holding at least one file (at any depth)."""
    if osp.isfile(path):
        return True
    for _, _, files in os.walk(path):
        if files:
            return True
    return False


def remove_path(path: str) -> None:
    """Remove a file or a folder tree if it exists."""
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)


def check_regenerated(paths: Sequence[str], argument: str) -> None:
    """Raise :class:`OutputDirError` when a file to regenerate is a folder (e.g. a result file
    named after an existing folder): only files are removed to be rewritten, never a tree."""
    for path in paths:
        if osp.isdir(path) and not osp.islink(path):
            raise OutputDirError(
                errno.EISDIR, f'{argument}: {path} is a folder, not a result file this run '
                'rewrites; nothing was removed: name a file, or move the folder')


def claim_folder(prov: Provenance, outputs: Mapping[str, Sequence[str]], overwrite: bool = False,
                 regenerated: Sequence[str] = ()) -> FolderClaim:
    """Lock ``prov.folder``, check its record, clear stale stages and write the new record.

    Args:
        prov (Provenance): The folder's record with this run's stages declared.
        outputs (Mapping[str, Sequence[str]]): Stage -> its files or folders (a stage whose
            paths hold a file has outputs). Stages not declared in ``prov`` are left alone.
        overwrite (bool): Remove and recompute mismatching stages instead of stopping.
        regenerated (Sequence[str]): Files rewritten at the end of every run from the current
            outputs; removed now (a folder among them stops the run, nothing removed).

    Returns:
        FolderClaim: The held lock and the cleared stages.

    Raises:
        FolderInUseError: Another process holds the folder.
        OutputDirError: A path of ``regenerated`` is a folder.
        ProvenanceError: A stage with files does not match and ``overwrite`` is False.
    """
    lock = FolderLock(prov.folder, prov.argument).acquire()
    try:
        check_regenerated(regenerated, prov.argument)
        declared = set(prov.stages)
        with_files = [s for s, paths in outputs.items()
                      if s in declared and any(has_files(p) for p in paths)]
        cleared = prov.check(with_files, overwrite)
        for stage in cleared:
            for path in outputs[stage]:
                remove_path(path)
        for path in regenerated:
            remove_path(path)
        prov.write()
    except BaseException:
        lock.release()
        raise
    return FolderClaim(lock, cleared)


def claim_folder_for_all_ranks(claim: Callable[[], FolderClaim]) -> FolderClaim:
    """Run ``claim`` (e.g. a :func:`claim_folder` call) on rank 0 only and share its outcome.

    Without a process group this is ``claim()``. Otherwise every rank waits for rank 0; an
    :class:`OSError` there (a held lock, a mismatching record, a folder that cannot be
    cleared) or any other error is raised on every rank, so they all stop with the same
    one-line error.

    Args:
        claim (Callable[[], FolderClaim]): Declares the stages and claims the folder.

    Returns:
        FolderClaim: Rank 0's claim on rank 0; elsewhere one without the lock, with the
        stages rank 0 cleared.
    """
    from mmengine.dist import broadcast_object_list, get_dist_info
    rank, world_size = get_dist_info()
    if world_size == 1:
        return claim()
    result, error = None, None
    if rank == 0:
        try:
            result = claim()
        except Exception as e:  # noqa: BLE001 - shared, then raised on every rank
            error = e
    shared = [error, result.cleared if result is not None else []]
    broadcast_object_list(shared, src=0)
    error, cleared = shared
    if error is not None:
        raise error
    return result if result is not None else FolderClaim(None, cleared)
