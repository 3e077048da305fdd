# Copyright (c) mmaffseg contributors. All rights reserved.
"""One writer per output folder: an OS file lock held for the life of a run.

A run that writes a folder (``tools/train.py``'s work dir, the pseudo-label runner's
``out_dir``, a benchmark run's folder) takes :class:`FolderLock` first. The lock is an advisory
``flock`` on ``<folder>/.mmaffseg.lock``: the kernel releases it when the process ends, however it
ends (exit, exception, SIGKILL), so a lock left by a killed run never blocks the next one. The
file itself stays and holds the last holder's pid and command line, which a refused second run
names in its message. A second run into a locked folder stops at once with
:class:`FolderInUseError` (an :class:`OutputDirError`: the tools exit with status 2).
"""
import errno
import fcntl
import json
import os
import os.path as osp
import socket
import stat
import sys
import time
from typing import Optional

from .config_errors import OutputDirError

LOCK_NAME = '.mmaffseg.lock'


class FolderInUseError(OutputDirError):
    """Another running process holds the output folder's lock."""


def _holder(path: str) -> str:
    """What the lock file says of its holder (pid, host, start time, command), for messages."""
    try:
        with open(path) as f:
            info = json.load(f)
        return (f"pid {info['pid']} on {info['host']}, started {info['started']}: "
                f"{info['command']}")
    except (OSError, ValueError, KeyError, TypeError):
        return 'a process that has not written its pid yet'


class FolderLock:
    """Hold ``<folder>/.mmaffseg.lock`` for as long as this object is acquired.

    Use it as a context manager, or call :meth:`acquire` / :meth:`release`.

    Args:
        folder (str): The output folder (created if needed).
        argument (str): The argument or setting that names the folder, for the message
            (e.g. ``'--work-dir'``).
    """

    def __init__(self, folder: str, argument: str) -> None:
        self.folder = folder
        self.argument = argument
        self.path = osp.join(folder, LOCK_NAME)
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> 'FolderLock':
        """Take the lock, or raise :class:`FolderInUseError` naming the holder at once
        (:class:`OutputDirError` when the folder cannot be created or written).

        Re-acquiring a lock this object holds is a no-op.
        """
        if self._fd is not None:
            return self
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as e:
            raise OutputDirError(
                e.errno, f'{self.argument}: the folder {self.folder} cannot be created or '
                f'written ({type(e).__name__}: {e.strerror or e}); choose another '
                f'{self.argument} or fix the folder\'s permissions') from None
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise FolderInUseError(
                errno.EBUSY, f'{self.argument}: the folder {self.folder} is in use by another '
                f'run ({_holder(self.path)}); wait for it to finish, stop it, or choose another '
                f'{self.argument}') from None
        info = dict(pid=os.getpid(), host=socket.gethostname(),
                    started=time.strftime('%Y-%m-%d %H:%M:%S'), command=' '.join(sys.argv))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def _open(self) -> int:
        """Open (or create) the lock file, never through a symbolic link: the holder's
        details are written into it, which must not land in a file it points to."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            kind = {errno.ELOOP: 'a symbolic link', errno.EISDIR: 'a folder'}.get(e.errno)
            if kind is None:
                raise OutputDirError(
                    e.errno, f'{self.argument}: the lock file {self.path} cannot be opened '
                    f'({type(e).__name__}: {e.strerror or e}); fix its permissions or choose '
                    f'another {self.argument}') from None
            raise self._not_a_lock_file(kind) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._not_a_lock_file('a special file')
        return fd

    def _not_a_lock_file(self, kind: str) -> OutputDirError:
        return OutputDirError(
            errno.EEXIST, f'{self.argument}: {self.path} is {kind}, not the lock file mmaffseg '
            f'makes there (a plain file); move it out of the way, or choose another '
            f'{self.argument}')

    def release(self) -> None:
        """Give the lock back (the lock file stays; the kernel also releases it at exit)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> 'FolderLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
