# Copyright (c) mmaffseg contributors. All rights reserved.
"""Timing and memory measurement shared by the benchmark tools."""
import resource
import time
from typing import Callable, Dict

import torch


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_fn(fn: Callable[[], object], warmup: int = 2, repeat: int = 5) -> Dict[str, float]:
    """Median and mean wall time of ``fn()`` in seconds, synchronising CUDA if used.

    Args:
        fn (Callable): The work to time; its result is discarded.
        warmup (int): Untimed calls first. Default: 2.
        repeat (int): Timed calls. Default: 5.
    """
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    times.sort()
    return dict(median=times[len(times) // 2], mean=sum(times) / len(times), min=times[0])
