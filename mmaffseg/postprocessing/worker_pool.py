# Copyright (c) mmaffseg contributors. All rights reserved.
"""A process pool that is kept across calls, whose workers die with their parent.

Used by :meth:`mmaffseg.postprocessing.DenseCRF.batch` to spread CPU-bound per-image work over
the cores. Starting a pool costs a process start per worker (and, with the ``spawn`` or
``forkserver`` start methods, the import of mmaffseg in each), which is more than a small
batch's work: :class:`PersistentPool` starts its workers on first use and keeps them for the
later calls of the same thread. Each worker runs one compute thread
(``torch.set_num_threads(1)``), so W workers use W cores without oversubscription, and exits
when the process that started it dies, even by SIGKILL (:func:`die_with_parent`), so a killed
run leaves no orphaned workers.

Memory: workers made by ``fork`` (the Linux default before Python 3.14) share the parent's
memory pages of the moment they started; while they live, a page the parent writes afterwards
is copied, so a kept forked pool can cost up to the parent's resident memory at its start
(model weights are not written at inference and stay shared). ``start_method='forkserver'``
avoids that, for one import of mmaffseg per worker at the pool's start.
"""
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, List, Optional, Sequence

import torch

#: Seconds between two checks of a pool worker that its parent is still alive.
PARENT_POLL_INTERVAL = 1.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(creator_pid: Optional[int] = None,
                    poll_interval: float = PARENT_POLL_INTERVAL) -> None:
    """Make this (worker) process exit when its parent process dies, even by SIGKILL.

    Meant as the ``initializer`` of a process pool: a pool worker otherwise blocks forever on
    its task queue once the parent is killed. On Linux the kernel sends SIGKILL on the parent's
    death (``prctl(PR_SET_PDEATHSIG)``); on every platform a daemon thread also polls
    ``os.getppid()`` and exits the process when the parent is gone (reparented). Linux
    signals when the *thread* that started the worker ends: use a pool only from the thread
    that made it, as :class:`PersistentPool` does.

    Args:
        creator_pid (int, optional): Pid of the process that made the pool, watched as well
            when it is not the parent (a ``forkserver`` pool). Defaults to None.
        poll_interval (float): Seconds between two checks of the parent. Defaults to 1.
    """
    parent = os.getppid()
    if sys.platform.startswith('linux'):
        try:
            libc = ctypes.CDLL(None, use_errno=True)  # this process's symbols, libc's too
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no usable libc: the polling thread below still works
    # With a fork server the parent is that server, which may outlive the pool's creator:
    # watch the creator too (POSIX only: os.kill(pid, 0) terminates a process on Windows).
    watch_creator = creator_pid is not None and parent != creator_pid and os.name == 'posix'

    def parents_alive() -> bool:
        if os.getppid() != parent:
            return False
        if watch_creator:
            try:
                os.kill(creator_pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                pass
        return True

    if not parents_alive():  # died while this worker started (a spawned one imports a while)
        os._exit(1)

    def watch() -> None:
        while parents_alive():
            time.sleep(poll_interval)
        os._exit(1)

    threading.Thread(target=watch, name='die-with-parent', daemon=True).start()


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where the
    platform has no affinity)."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpus_per_rank() -> int:
    """:func:`available_cpus` shared by the ranks of a distributed run on this machine
    (``LOCAL_WORLD_SIZE``, set by ``torchrun``; 1 otherwise), at least 1."""
    try:
        ranks = max(1, int(os.environ.get('LOCAL_WORLD_SIZE', 1)))
    except ValueError:
        ranks = 1
    return max(1, available_cpus() // ranks)


def init_worker(creator_pid: int) -> None:
    """Initializer of a pool worker: one compute thread, and exit with the parent."""
    torch.set_num_threads(1)  # single-threaded work (numpy, pydensecrf): no oversubscription
    die_with_parent(creator_pid)


class WorkerTaskError(RuntimeError):
    """A task of :meth:`PersistentPool.run` failed in a worker, or its worker died.

    Args:
        index (int): Position of the task in the call.
        message (str): What happened.
    """

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


class PersistentPool:
    """A :class:`~concurrent.futures.ProcessPoolExecutor` kept across :meth:`run` calls.

    The pool is started by the first :meth:`run` and reused by the later calls of the thread
    that started it (on Linux its workers die with that thread, ``PR_SET_PDEATHSIG``; a call
    from another thread gets a pool of its own for that call). A larger ``size`` than the
    current pool's restarts it; a worker that dies (killed, or crashed in native code) breaks
    the pool, which is then restarted by the next call. Pickling or copying the pool gives an
    unstarted one (the settings only).

    Args:
        start_method (str, optional): multiprocessing start method (``'fork'``, ``'spawn'``,
            ``'forkserver'``); None uses the platform default. Defaults to None.
    """

    def __init__(self, start_method: Optional[str] = None) -> None:
        self.start_method = start_method
        self._executor: Optional[ProcessPoolExecutor] = None
        self._thread: Optional[threading.Thread] = None
        self._size = 0
        self._finalizer: Optional[weakref.finalize] = None

    def __getstate__(self) -> dict:
        return dict(start_method=self.start_method)

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    @property
    def started(self) -> bool:
        """Whether worker processes are kept now."""
        return self._executor is not None

    def close(self) -> None:
        """Shut the workers down (a later :meth:`run` starts new ones)."""
        executor, self._executor, self._thread, self._size = self._executor, None, None, 0
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _new_executor(self, size: int) -> ProcessPoolExecutor:
        context = (multiprocessing.get_context(self.start_method)
                   if self.start_method is not None else None)
        return ProcessPoolExecutor(max_workers=size, mp_context=context,
                                   initializer=init_worker, initargs=(os.getpid(), ))

    def _executor_for(self, size: int) -> ProcessPoolExecutor:
        thread = threading.current_thread()
        if self._executor is not None and self._thread is not thread:
            if self._thread.is_alive():  # another live thread owns the pool: leave it alone
                return self._new_executor(size)
            self.close()  # its thread is gone, and its workers with it
        if self._executor is not None and self._size < size:
            self.close()
        if self._executor is None:
            self._executor = self._new_executor(size)
            self._thread, self._size = thread, size
            # the workers end with this object (and with the process in any case)
            self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False,
                                               cancel_futures=True)
        return self._executor

    def run(self, fn: Callable[..., Any], tasks: Sequence[tuple], size: int,
            label: str = 'task') -> List[Any]:
        """``[fn(*args) for args in tasks]`` over ``size`` worker processes, in task order.

        Args:
            fn (Callable): A picklable function (a bound method pickles its object).
            tasks (Sequence[tuple]): The arguments of each call.
            size (int): Worker processes (at least; a larger kept pool is reused).
            label (str): How errors name a task, e.g. ``'DenseCRF.batch: image'``.

        Returns:
            list: The results, in the order of ``tasks``.

        Raises:
            WorkerTaskError: The first task (in order) that raised, or whose worker died; the
                original exception is chained. Tasks not started yet are cancelled.
        """
        return self.submit(fn, tasks, size, label).result()

    def submit(self, fn: Callable[..., Any], tasks: Sequence[tuple], size: int,
               label: str = 'task') -> 'PendingTasks':
        """Start :meth:`run`'s work and return at once; :meth:`PendingTasks.result` collects it
        (same results and errors as :meth:`run`), from the thread that submitted."""
        executor = self._executor_for(size)
        pending = PendingTasks(self, executor, executor is self._executor, label)
        try:
            pending.futures = [executor.submit(fn, *args) for args in tasks]
        except BaseException as e:
            pending.fail(e)
            raise
        return pending

    @staticmethod
    def _result(future: Future, index: int, total: int, label: str) -> Any:
        try:
            return future.result()
        except BrokenProcessPool as e:
            raise WorkerTaskError(
                index, f'{label} {index} of {total}: a worker process died (killed, or crashed '
                'in native code) while it was waiting or running; the pool is restarted at the '
                'next call') from e
        except Exception as e:  # noqa: BLE001 - re-raised with the task's index
            raise WorkerTaskError(index, f'{label} {index} of {total} failed in a worker: '
                                  f'{type(e).__name__}: {e}') from e


class PendingTasks:
    """The tasks of one :meth:`PersistentPool.submit`, running in the pool.

    Args:
        pool (PersistentPool): The pool that runs them.
        executor (ProcessPoolExecutor): The executor they were submitted to.
        owned (bool): Whether ``executor`` is the pool's kept one (else it is shut down when
            the tasks are collected or cancelled).
        label (str): How errors name a task.
    """

    def __init__(self, pool: PersistentPool, executor: ProcessPoolExecutor, owned: bool,
                 label: str) -> None:
        self.pool, self.executor, self.owned, self.label = pool, executor, owned, label
        self.futures: List[Future] = []

    def result(self) -> List[Any]:
        """The results in task order (waits); raises as :meth:`PersistentPool.run`."""
        try:
            return [PersistentPool._result(future, index, len(self.futures), self.label)
                    for index, future in enumerate(self.futures)]
        except BaseException as e:
            self.fail(e)
            raise
        finally:
            if not self.owned:
                self.executor.shutdown(wait=True, cancel_futures=True)

    def cancel(self) -> None:
        """Cancel the tasks not started yet (the kept workers stay for later calls)."""
        for future in self.futures:
            future.cancel()
        if not self.owned:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def fail(self, error: BaseException) -> None:
        """After ``error``: cancel the tasks not started; a broken kept pool is closed (the
        next call starts a new one)."""
        for future in self.futures:
            future.cancel()
        if self.owned and BrokenProcessPool in (type(error), type(error.__cause__)):
            self.pool.close()
        elif not self.owned:
            self.executor.shutdown(wait=False, cancel_futures=True)


class SerialTasks:
    """:class:`PendingTasks`' interface for work run in this process when collected."""

    def __init__(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> None:
        self.fn, self.tasks = fn, list(tasks)

    def result(self) -> List[Any]:
        """``[fn(*args) for args in tasks]``, computed now."""
        return [self.fn(*args) for args in self.tasks]

    def cancel(self) -> None:
        """Drop the work (nothing has run)."""
        self.tasks = []
