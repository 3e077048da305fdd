# Copyright (c) mmaffseg contributors. All rights reserved.
"""Timing and memory measurement shared by the benchmark tools."""
import os
import resource
import time
from typing import Callable, Dict, List, Tuple

import torch


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed_calls(fn: Callable[[], object], warmup: int,
                 repeat: int) -> Tuple[List[float], List[float]]:
    """Wall and process-CPU seconds of ``repeat`` calls of ``fn()`` after ``warmup`` calls."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        sync()
        w, c = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return wall, cpu


def time_fn(fn: Callable[[], object], warmup: int = 2, repeat: int = 5) -> Dict[str, float]:
    """Median, mean and minimum wall time of ``fn()`` in seconds, synchronising CUDA if used.

    Args:
        fn (Callable): The work to time; its result is discarded.
        warmup (int): Untimed calls first. Default: 2.
        repeat (int): Timed calls. Default: 5.
    """
    times = sorted(_timed_calls(fn, warmup, repeat)[0])
    return dict(median=times[len(times) // 2], mean=sum(times) / len(times), min=times[0])


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB (Linux ``/proc/self/statm``)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def wall_and_cpu_seconds(fn: Callable[[], object],
                         warmup: int = 1,
                         repeat: int = 3) -> Tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``fn()``, in seconds.

    CPU time stays meaningful on a shared, oversubscribed machine where wall time does not.
    CUDA work is synchronised before each clock reading.

    Args:
        fn (Callable): The work to time; its result is discarded.
        warmup (int): Untimed calls first. Default: 1.
        repeat (int): Timed calls. Default: 3.
    """
    wall, cpu = _timed_calls(fn, warmup, repeat)
    return sorted(wall)[repeat // 2], sorted(cpu)[repeat // 2]


#: aten operations whose output size or value the host must read (``nonzero``, ``unique``,
#: boolean-mask selection, ``item()``/``float()``): on a GPU each one waits for the device.
HOST_SYNC_OPS = ('aten::nonzero', 'aten::_local_scalar_dense', 'aten::_unique2',
                 'aten::_unique', 'aten::unique_dim', 'aten::unique_consecutive',
                 'aten::masked_select')


def count_aten_ops(fn: Callable[[], object]) -> Tuple[int, int]:
    """aten operations run by one call of ``fn()``, and how many of them synchronise with the
    host (:data:`HOST_SYNC_OPS`), counted with ``torch.profiler``; ``Tensor.tolist()`` (which
    reads the data without an aten operation) counts as one more synchronisation per call.

    Args:
        fn (Callable): The work to count; its result is discarded.

    Returns:
        tuple[int, int]: ``(operations, host-synchronising operations)``.
    """
    tolist = torch.Tensor.tolist
    reads = []

    def counted_tolist(self):
        reads.append(1)
        return tolist(self)

    torch.Tensor.tolist = counted_tolist
    try:
        with torch.profiler.profile() as prof:
            fn()
    finally:
        torch.Tensor.tolist = tolist
    events = prof.key_averages()
    return (sum(e.count for e in events if e.key.startswith('aten::')),
            sum(e.count for e in events if e.key in HOST_SYNC_OPS) + len(reads))
