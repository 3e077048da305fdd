# Copyright (c) mmaffseg contributors. All rights reserved.
"""Atomic file writes: a file is either absent or complete, never half written.

The bytes go to a hidden temporary file in the destination folder
(``.<name>.<random>.tmp``), are flushed to disk, and the temporary file is renamed over the
destination with :func:`os.replace` (atomic on POSIX and Windows within one file system). An
exception removes the temporary file; a killed process can leave one behind, which never has the
destination's name and is removed by :func:`remove_stale_temp_files` before the file is made
again, or by :func:`sweep_stale_temp_files` when a run starts in the folder. A SIGTERM or SIGINT
removes the temporary files of the writes in progress once :func:`remove_temp_files_on_signals`
was called (``tools/train.py`` does). Long-running generators (the pseudo-label runner) use this
so that an interrupted run can be resumed by checking only whether each output exists. The file
gets the permissions a plain ``open(path, 'wb')`` would give it (``0o666`` less the process
umask), not ``mkstemp``'s ``0o600``.
"""
import glob
import os
import os.path as osp
import re
import signal
import tempfile
import time
from typing import BinaryIO, List, Sequence, Set

TEMP_SUFFIX = '.tmp'
#: Our temporary files: ``.<name>.<mkstemp's 8 random characters>.tmp``.
_TEMP_NAME = re.compile(r'^\..+\.[a-z0-9_]{8}' + re.escape(TEMP_SUFFIX) + '$')
#: Temporary files of the writes in progress in this process.
_in_flight: Set[str] = set()


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
    _in_flight.add(tmp)
    try:
        with os.fdopen(fd, 'wb') as f:
            os.fchmod(f.fileno(), 0o666 & ~_current_umask())
            _write_all(f, data)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        _in_flight.discard(tmp)


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


def sweep_stale_temp_files(folder: str, min_age_s: float = 60.0) -> List[str]:
    """Remove the temporary files that interrupted :func:`atomic_write_bytes` calls (a killed
    run) left in ``folder``: only files named as ours and not modified for ``min_age_s``
    seconds (a write in progress keeps its file fresh).

    Args:
        folder (str): The folder (its sub-folders are not searched).
        min_age_s (float): Least age of a removed file, in seconds. Default: 60.

    Returns:
        list[str]: The removed files.
    """
    removed = []
    now = time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        path = osp.join(folder, name)
        try:
            if (_TEMP_NAME.match(name) and osp.isfile(path)
                    and now - os.stat(path).st_mtime >= min_age_s):
                os.remove(path)
                removed.append(path)
        except OSError:
            pass  # gone meanwhile, or not ours to remove
    return sorted(removed)


def remove_in_flight_temp_files() -> None:
    """Remove the temporary files of this process's writes in progress."""
    for tmp in list(_in_flight):
        try:
            os.remove(tmp)
        except OSError:
            pass


def remove_temp_files_on_signals(
        signums: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """Make ``signums`` remove the temporary files of the writes in progress first.

    Then the signal does what it did before (SIGTERM ends the process, SIGINT raises
    ``KeyboardInterrupt``). Ignored signals stay ignored. Call it from the main thread; calling
    it again changes nothing.

    Args:
        signums (Sequence[int]): The signals. Default: SIGTERM and SIGINT.
    """
    for signum in signums:
        previous = signal.getsignal(signum)
        if previous == signal.SIG_IGN or getattr(previous, 'removes_temp_files', False):
            continue

        def handler(num: int, frame, previous=previous) -> None:
            remove_in_flight_temp_files()
            if callable(previous):
                previous(num, frame)
                return
            signal.signal(num, signal.SIG_DFL)
            os.kill(os.getpid(), num)  # end as the signal would have

        handler.removes_temp_files = True
        signal.signal(signum, handler)


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
