# Copyright (c) mmaffseg contributors. All rights reserved.
"""Checking an output folder before any work: writable, with enough free space.

One check for every tool that writes results (``tools/train.py``'s ``--work-dir``,
``tools/test.py``'s ``--out``, the pseudo-label runner's ``out_dir``): an unusable folder is
reported at once, naming the argument, instead of as a traceback after the models are built.
"""
import errno
import shutil
from typing import Type

from .atomic_io import probe_writable
from .config_errors import OutputDirError


def check_output_folder(folder: str,
                        argument: str,
                        min_free_bytes: int = 0,
                        error_type: Type[OutputDirError] = OutputDirError) -> int:
    """Create ``folder`` if needed, check that a file can be written there and measure the
    free space.

    Args:
        folder (str): The output folder.
        argument (str): The argument or setting that names it, for the messages
            (e.g. ``'--work-dir'``).
        min_free_bytes (int): Least free space accepted. Default: 0 (not checked).
        error_type (type): The :class:`OutputDirError` subclass raised. Default:
            :class:`OutputDirError`.

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
            f'less than the {min_free_bytes / 2**20:.0f} MiB needed; free some space or choose '
            f'another {argument}')
    return free
