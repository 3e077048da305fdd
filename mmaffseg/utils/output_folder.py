# Copyright (c) mmaffseg contributors. All rights reserved.
"""Checking an output folder before any work: writable, with enough free space.

One check for every tool that writes results (``tools/train.py``'s ``--work-dir``,
``tools/test.py``'s ``--out``, the pseudo-label runner's ``out_dir``): an unusable folder is
reported at once, naming the argument, instead of as a traceback after the models are built.
A write that later fails for lack of space is reported the same way (:func:`disk_full_error`).
"""
import errno
import shutil
from typing import Tuple, Type

from .atomic_io import probe_writable
from .config_errors import OutputDirError

#: ``OSError.errno`` values of a full disk (no space left, disk quota exceeded).
DISK_FULL_ERRNOS: Tuple[int, ...] = (errno.ENOSPC, errno.EDQUOT)


def _mib(size: int) -> str:
    mib = size / 2**20
    return f'{mib:.0f}' if mib >= 10 else f'{mib:.2g}'


def check_output_folder(folder: str,
                        argument: str,
                        min_free_bytes: int = 0,
                        error_type: Type[OutputDirError] = OutputDirError,
                        needed_for: str = '') -> int:
    """Create ``folder`` if needed, check that a file can be written there and measure the
    free space.

    Args:
        folder (str): The output folder.
        argument (str): The argument or setting that names it, for the messages
            (e.g. ``'--work-dir'``).
        min_free_bytes (int): Least free space accepted. Default: 0 (not checked).
        error_type (type): The :class:`OutputDirError` subclass raised. Default:
            :class:`OutputDirError`.
        needed_for (str): What the space is for, for the message (e.g. ``'one checkpoint'``).

    Returns:
        int: Free bytes on the folder's file system.

    Raises:
        OutputDirError: The folder cannot be created or written, or has too little space.
    """
    try:
        probe_writable(folder)
    except OSError as e:
        raise error_type(
            e.errno, f'{argument}: the folder {folder} cannot be created or written '
            f'({type(e).__name__}: {e.strerror or e}); choose another {argument} or fix the '
            'folder\'s permissions') from None
    free = shutil.disk_usage(folder).free
    if free < min_free_bytes:
        raise error_type(
            errno.ENOSPC, f'{argument}: the folder {folder} has {free / 2**20:.1f} MiB free, '
            f'less than the {_mib(min_free_bytes)} MiB needed'
            f'{" for " + needed_for if needed_for else ""}; free some space or choose '
            f'another {argument}')
    return free


def disk_full_error(folder: str, writing: str, advice: str) -> OutputDirError:
    """The error for a write into ``folder`` that failed because its disk is full.

    Args:
        folder (str): The folder written to.
        writing (str): What was being written, for the message (e.g. ``'iter_8.pth'``).
        advice (str): What was kept and what to do, for the message.

    Returns:
        OutputDirError: Naming the folder and its free space (raise it ``from None``).
    """
    try:
        free = f'{shutil.disk_usage(folder).free / 2**20:.1f} MiB free'
    except OSError:
        free = 'free space unknown'
    return OutputDirError(
        errno.ENOSPC, f'the disk of {folder} is full ({free}) while writing {writing}; '
        f'{advice}')
