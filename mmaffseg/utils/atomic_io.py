# Copyright (c) mmaffseg contributors. All rights reserved.
"""Atomic file writes: a file is either absent or complete, never half written.

The bytes go to a hidden temporary file in the destination folder
(``.<name>.<random>.tmp``), are flushed to disk, and the temporary file is renamed over the
destination with :func:`os.replace` (atomic on POSIX and Windows within one file system). An
exception removes the temporary file; a killed process can leave one behind, which never has the
destination's name and is removed by :func:`remove_stale_temp_files` before the file is made
again. Long-running generators (the pseudo-label runner) use this so that an interrupted run can
be resumed by checking only whether each output exists. The file gets the permissions a plain
``open(path, 'wb')`` would give it (``0o666`` less the process umask), not ``mkstemp``'s ``0o600``.
"""
import glob
import os
import os.path as osp
import tempfile
from typing import BinaryIO, List

TEMP_SUFFIX = '.tmp'


def _temp_pattern(path: str) -> str:
    return osp.join(glob.escape(osp.dirname(path) or '.'),
                    f'.{glob.escape(osp.basename(path))}.*{TEMP_SUFFIX}')


def _write_all(f: BinaryIO, data: bytes) -> None:
    """Write ``data`` and flush it to disk (a separate function so tests can interrupt it)."""
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def _current_umask() -> int:
    """The process umask (read from /proc on Linux: setting it to read it races with threads)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring).

    Args:
        path (str): Destination file; its folder is created if needed.
        data (bytes): The complete content.
    """
    folder = osp.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            os.fchmod(f.fileno(), 0o666 & ~_current_umask())
            _write_all(f, data)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def make_temp_dir(prefix: str, parent: str) -> str:
    """A new hidden temporary folder in ``parent``, to be renamed into place when complete.

    Unlike :func:`tempfile.mkdtemp` (``0o700``), it gets the permissions :func:`os.makedirs`
    would give a folder (``0o777`` less the process umask), which it keeps after the rename.

    Args:
        prefix (str): Start of the folder's name.
        parent (str): Existing folder to create it in.

    Returns:
        str: The folder's path.
    """
    folder = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(folder, 0o777 & ~_current_umask())
    return folder


def stale_temp_files(path: str) -> List[str]:
    """Temporary files left by interrupted :func:`atomic_write_bytes` calls for ``path``."""
    return sorted(glob.glob(_temp_pattern(path)))


def remove_stale_temp_files(path: str) -> None:
    """Remove the temporary files of interrupted writes of ``path``.

    Only call it when no other process is writing ``path`` at the same time.
    """
    for tmp in stale_temp_files(path):
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass


def probe_writable(folder: str) -> None:
    """Create ``folder`` if needed and write (and remove) a small file there.

    Raises:
        OSError: The folder cannot be created or written (read-only, no rights, under a file).
    """
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder) as f:
        f.write(b'0')
        f.flush()
        os.fsync(f.fileno())
