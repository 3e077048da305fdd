# Copyright (c) mmaffseg contributors. All rights reserved.
"""The benchmark harness: every target of ``tools/analysis_tools/benchmark.py`` measures with it.

Three pieces:

* **Measure a callable** in this process: :func:`measure` gives the median (and minimum) wall
  time, the median process CPU time (all threads; the figure that stays meaningful on a shared,
  oversubscribed machine) and the peak memory of ``fn()``; :func:`peak_memory` runs a callable
  once and returns its result with its peak memory.
* **Run a case in a fresh process**, so that a peak memory belongs to that case alone:
  :func:`run_case` runs a script (typically the tool itself in a worker mode) and returns the
  JSON dict the script printed on the last line of its stdout with :func:`emit_result`;
  :func:`call_in_fresh_process` calls a picklable function in a spawned interpreter.
  A case that fails raises :class:`CaseError` with its exit code and stderr.
* **Print** results: :func:`format_table` (markdown) and :func:`ratio_table` (the ratios of each
  case to its baseline, both measured in the same run).

Peak memory, one definition everywhere:

* CPU: the peak resident set size of the process (Linux ``VmHWM``), restarted from the current
  resident size before the measurement by writing ``5`` to ``/proc/self/clear_refs`` (Linux >=
  4.0). Where that reset is unavailable, the process's lifetime peak (``ru_maxrss``) is used,
  which is only the case's own in a fresh process; ``peak_source`` in the results says which.
  Before the reset, glibc's ``malloc_trim(0)`` hands the heap's free pages back to the system:
  otherwise memory freed by earlier work stays resident and a later allocation that reuses it
  (a C++ kernel's buffers, a tensor below the mmap threshold) never raises the peak; the walk's
  work buffers at 1024 x 2048 read 5 MiB without the trim and 24 MiB with it.
* CUDA: ``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats``.

``peak_mb`` is that peak, ``work_mb`` the peak above the memory held just before the first call
(the memory the work itself needed, without the built model and the Python runtime).
"""
import ctypes
import ctypes.util
import functools
import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch

_CLEAR_REFS = '/proc/self/clear_refs'
_STATUS = '/proc/self/status'


def peak_rss_mb() -> float:
    """Lifetime peak resident set size of this process, in MiB (``ru_maxrss``; Linux KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB (Linux ``/proc/self/statm``)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def _status_mb(field: str) -> float:
    with open(_STATUS) as f:
        return int(re.search(field + r':\s+(\d+)', f.read()).group(1)) / 1024


@functools.lru_cache(maxsize=None)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim``, None where the C library has none."""
    try:
        return ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6').malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _release_free_heap() -> None:
    """Return the free pages of the C heap to the system (glibc ``malloc_trim``; elsewhere a
    no-op), so that memory freed before a measurement counts again when it is reused."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _is_cuda(device: Union[str, torch.device, None]) -> bool:
    return device is not None and torch.device(device).type == 'cuda'


def reset_peak_memory(device: Union[str, torch.device, None] = None) -> Tuple[float, str]:
    """Restart the peak-memory counter of ``device`` from the memory held now.

    Args:
        device (str | torch.device, optional): ``'cuda[:i]'`` for the CUDA allocator's peak;
            anything else (default) for this process's resident memory.

    Returns:
        tuple[float, str]: The memory held now, in MiB, and how the peak is read afterwards
        (``'cuda'``, ``'VmHWM'`` or ``'ru_maxrss'`` where the reset is not available).
    """
    if _is_cuda(device):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20, 'cuda'
    _release_free_heap()
    try:
        with open(_CLEAR_REFS, 'w') as f:
            f.write('5')
        return _status_mb('VmRSS'), 'VmHWM'
    except (OSError, AttributeError):  # not Linux, or a kernel without the peak reset
        return current_rss_mb(), 'ru_maxrss'


def read_peak_memory(source: str, device: Union[str, torch.device, None] = None) -> float:
    """The peak memory in MiB since :func:`reset_peak_memory` returned ``source``."""
    if source == 'cuda':
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    if source == 'VmHWM':
        return _status_mb('VmHWM')
    return peak_rss_mb()


def peak_memory(fn: Callable[[], Any],
                device: Union[str, torch.device, None] = None) -> Tuple[Any, Dict[str, Any]]:
    """Call ``fn()`` once and measure its peak memory.

    Args:
        fn (Callable): The work.
        device (str | torch.device, optional): Where the work's memory lives (see
            :func:`reset_peak_memory`). Defaults to None (CPU).

    Returns:
        tuple: ``fn()``'s result and a dict with ``peak_mb`` (the peak), ``work_mb`` (the peak
        above the memory held before the call) and ``peak_source``.
    """
    base, source = reset_peak_memory(device)
    result = fn()
    peak = read_peak_memory(source, device)
    return result, dict(peak_mb=peak, work_mb=peak - base, peak_source=source)


def _descendants_cpu_seconds() -> float:
    """CPU seconds (user + system) of the running descendants of this process (Linux /proc)."""
    me, parents, ticks = os.getpid(), {}, {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:  # gone meanwhile, or not readable
            continue
        # after the command: state, ppid, ... utime (14th field of the line), stime (15th)
        parents[int(name)] = int(fields[1])
        ticks[int(name)] = int(fields[11]) + int(fields[12])
    total, frontier = 0, {me}
    while frontier:
        children = {pid for pid, ppid in parents.items() if ppid in frontier}
        total += sum(ticks[pid] for pid in children)
        frontier = children
    return total / os.sysconf('SC_CLK_TCK')


def cpu_seconds(children: bool = False) -> float:
    """Process CPU time of this process (all threads), in seconds.

    Args:
        children (bool): Add the CPU time of its child processes: the finished ones
            (``RUSAGE_CHILDREN``) and, on Linux, the running ones and their descendants (a
            persistent worker pool). Default: False.
    """
    total = time.process_time()
    if children:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += usage.ru_utime + usage.ru_stime
        if os.path.isdir('/proc/self'):
            total += _descendants_cpu_seconds()
    return total


def _timed_calls(fn: Callable[[], object], warmup: int, repeat: int,
                 device: Union[str, torch.device, None] = None,
                 children: bool = False) -> Tuple[List[float], List[float]]:
    """Wall and process-CPU seconds of ``repeat`` calls of ``fn()`` after ``warmup`` calls."""
    cuda = _is_cuda(device) or (device is None and torch.cuda.is_available()
                                and torch.cuda.is_initialized())

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        sync()
        w, c = time.perf_counter(), cpu_seconds(children)
        fn()
        sync()
        wall.append(time.perf_counter() - w)
        cpu.append(cpu_seconds(children) - c)
    return wall, cpu


def _median(values: Sequence[float]) -> float:
    return sorted(values)[len(values) // 2]


def measure(fn: Callable[[], Any],
            warmup: int = 1,
            repeat: int = 3,
            device: Union[str, torch.device, None] = None,
            memory: bool = True,
            children: bool = False) -> Dict[str, Any]:
    """Time ``fn()`` and measure its peak memory.

    CUDA work is synchronised before each clock reading. The peak memory covers the warm-up and
    the timed calls; ``work_mb`` is counted from the memory held before the first call.

    Args:
        fn (Callable): The work; its result is discarded.
        warmup (int): Untimed calls first. Default: 1.
        repeat (int): Timed calls. Default: 3.
        device (str | torch.device, optional): Where the work runs (``'cuda'`` reads the CUDA
            allocator's peak). Default: None (CPU).
        memory (bool): Also measure the peak memory. Default: True.
        children (bool): Count the CPU time of child processes too (see :func:`cpu_seconds`);
            the peak memory stays this process's. Default: False.

    Returns:
        dict: ``wall_s`` and ``cpu_s`` (medians), ``wall_min_s``, ``cpu_min_s``, ``repeat``, and
        with ``memory`` ``peak_mb``, ``work_mb`` and ``peak_source`` (see the module docstring).
    """
    if repeat < 1:
        raise ValueError(f'measure: repeat must be >= 1, got {repeat}')
    if memory:
        base, source = reset_peak_memory(device)
    wall, cpu = _timed_calls(fn, warmup, repeat, device, children)
    result = dict(wall_s=_median(wall), cpu_s=_median(cpu), wall_min_s=min(wall),
                  cpu_min_s=min(cpu), repeat=repeat)
    if memory:
        peak = read_peak_memory(source, device)
        result.update(peak_mb=peak, work_mb=peak - base, peak_source=source)
    return result


# ---------------------------------------------------------------------------- fresh processes
class CaseError(RuntimeError):
    """A benchmark case that failed in its subprocess: exit code and stderr included."""

    def __init__(self, message: str, returncode: Optional[int] = None, stderr: str = '') -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def _jsonable(value: Any) -> Any:
    if hasattr(value, 'tolist'):  # numpy arrays and scalars, tensors
        return value.tolist()
    raise TypeError(f'emit_result: {type(value).__name__} is not JSON serialisable')


def emit_result(result: Mapping[str, Any]) -> None:
    """Print ``result`` as one JSON line on stdout: the last line :func:`run_case` reads.

    numpy arrays and scalars and tensors are written as (nested) lists and numbers.
    """
    sys.stdout.write(json.dumps(result, default=_jsonable) + '\n')
    sys.stdout.flush()


def run_case(args: Sequence[str],
             env: Optional[Mapping[str, str]] = None,
             cwd: Optional[str] = None,
             timeout: Optional[float] = None,
             stderr_chars: int = 3000) -> Dict[str, Any]:
    """Run ``python ARGS`` in a fresh interpreter and return the JSON dict it printed last.

    The case (typically the calling tool in a worker mode) prints its result with
    :func:`emit_result`; anything printed before is ignored.

    Args:
        args (Sequence[str]): Script and arguments, e.g. ``[__file__, '--case', 'x']``.
        env (Mapping[str, str], optional): Environment of the case; default: this process's.
        cwd (str, optional): Working directory of the case.
        timeout (float, optional): Seconds before the case is killed.
        stderr_chars (int): How much of the end of stderr an error quotes. Default: 3000.

    Returns:
        dict: The parsed last line of the case's stdout.

    Raises:
        CaseError: The case exited with a non-zero code, timed out, or its last stdout line is
            not a JSON object; the message names the command and quotes its stderr.
    """
    cmd = [sys.executable, *map(str, args)]
    shown = ' '.join(cmd)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                              env=None if env is None else dict(env), timeout=timeout)
    except subprocess.TimeoutExpired as e:
        stderr = e.stderr.decode(errors='replace') if isinstance(e.stderr, bytes) else (
            e.stderr or '')
        raise CaseError(f'benchmark case timed out after {timeout} s: {shown}\n'
                        f'{stderr[-stderr_chars:]}', None, stderr) from None
    if proc.returncode:
        raise CaseError(f'benchmark case failed with exit code {proc.returncode}: {shown}\n'
                        f'--- its stderr (end) ---\n{proc.stderr[-stderr_chars:]}',
                        proc.returncode, proc.stderr)
    lines = proc.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        raise CaseError(f'benchmark case printed no JSON object on its last stdout line: {shown}\n'
                        f'--- its stdout (end) ---\n{proc.stdout[-stderr_chars:]}\n'
                        f'--- its stderr (end) ---\n{proc.stderr[-stderr_chars:]}', 0,
                        proc.stderr)
    return result


def call_in_fresh_process(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a freshly spawned interpreter; its (picklable) result.

    ``fn`` must be importable by the new interpreter (a module-level function; in a script run
    as ``__main__`` the script must be a file). An exception in the child is raised here with
    the child's traceback attached.
    """
    with multiprocessing.get_context('spawn').Pool(1) as pool:
        return pool.apply(fn, args, kwargs)


# ---------------------------------------------------------------------------- tables
Column = Union[str, Callable[[Mapping[str, Any]], float]]


def _value(result: Mapping[str, Any], column: Column) -> Any:
    """``column`` of ``result``: a callable, or a key with dots for nested dicts."""
    if callable(column):
        return column(result)
    value: Any = result
    for part in column.split('.'):
        value = value[part]
    return value


def format_table(header: Sequence[str], rows: Iterable[Sequence[Any]],
                 float_format: str = '.3f') -> str:
    """A markdown table; floats are written with ``float_format``."""
    def cell(v):
        return format(v, float_format) if isinstance(v, float) else str(v)

    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(cell(v) for v in row) + ' |' for row in rows]
    return '\n'.join(lines)


def ratio_table(results: Mapping[str, Mapping[str, Any]],
                pairs: Iterable[Tuple[str, str]],
                columns: Mapping[str, Column],
                float_format: str = '.3f') -> str:
    """Markdown table of ``case / baseline`` ratios, both measured in the same run.

    Args:
        results (Mapping[str, Mapping]): Case name -> its results.
        pairs (Iterable[tuple[str, str]]): ``(case, baseline)`` rows.
        columns (Mapping[str, str | Callable]): Column title -> what to divide: a key of the
            results (dots index nested dicts, e.g. ``'infer.cpu_s'``) or a function of them.
        float_format (str): Format of the ratios. Default: ``'.3f'``.

    Returns:
        str: ``| case | baseline | <title> ... |`` with ``value(case) / value(baseline)``;
        ``n/a`` where the baseline's value is zero.
    """
    rows = []
    for case, base in pairs:
        row = [case, base]
        for column in columns.values():
            a, b = _value(results[case], column), _value(results[base], column)
            row.append(a / b if b else 'n/a')
        rows.append(row)
    return format_table(['case', 'baseline', *columns], rows, float_format)


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
