# Copyright (c) mmaffseg contributors. All rights reserved.
"""The benchmark harness (benchmarks.profiling): peak memory of a known allocation, JSON cases
in fresh processes."""
import sys

import pytest
import torch
from benchmarks.profiling import (
    CaseError,
    call_in_fresh_process,
    cpu_seconds,
    format_table,
    peak_memory,
    ratio_table,
    run_case,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith('linux'),
                                reason='reads /proc/self/status')


# The peak-memory checks run in a fresh interpreter: in the pytest process, memory freed by
# earlier tests stays resident in the allocator and a new block may reuse it without raising the
# peak (the harness measures benchmark cases in fresh processes for the same reason).
PEAK_CASE = '''
import numpy as np
from benchmarks.profiling import emit_result, measure, peak_memory, reset_peak_memory

def allocate_and_free(mib):
    block = np.ones(mib * 2**20 // 8)  # touched: every page becomes resident
    total = int(block.size)
    del block
    return total

_, source = reset_peak_memory()
result, big = peak_memory(lambda: allocate_and_free(64))
_, small = peak_memory(lambda: allocate_and_free(16))
timed = measure(lambda: allocate_and_free(32), warmup=1, repeat=3)
untracked = measure(lambda: None, 0, 1, memory=False)
emit_result(dict(source=source, result=result, big=big, small=small, timed=timed,
                 untracked=sorted(untracked)))
'''


@pytest.fixture(scope='module')
def peak_case():
    return run_case(['-c', PEAK_CASE])


@linux_only
def test_known_allocation_shows_in_peak_memory(peak_case):
    """A freed 64 MiB block appears in the peak (within 10 %), not in the memory held after."""
    assert peak_case['source'] == 'VmHWM', (
        'this kernel cannot restart the peak RSS (Linux >= 4.0 can)')
    assert peak_case['result'] == 64 * 2**20 // 8
    big, small = peak_case['big'], peak_case['small']
    assert 64 * 0.9 <= big['work_mb'] <= 64 * 1.1, big
    # the counter restarts: a smaller allocation measured next is not hidden by the first one
    assert 16 * 0.9 <= small['work_mb'] <= 16 * 1.1, small


@linux_only
def test_measure_times_and_peak(peak_case):
    r = peak_case['timed']
    assert r['repeat'] == 3 and 0 < r['wall_min_s'] <= r['wall_s']
    assert 0 < r['cpu_min_s'] <= r['cpu_s']
    assert 32 * 0.9 <= r['work_mb'] <= 32 * 1.1 and r['peak_mb'] >= r['work_mb']
    assert 'peak_mb' not in peak_case['untracked']


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_peak_memory_of_a_known_allocation():
    _, mem = peak_memory(lambda: torch.empty(64 * 2**20, dtype=torch.uint8, device='cuda'),
                         device='cuda')
    assert mem['peak_source'] == 'cuda' and 64 <= mem['work_mb'] <= 66


CASE = '''
import sys
print('noise before the result')
if sys.argv[1] == 'crash':
    print('something on stdout')
    raise ValueError('case exploded: bad input 42')
if sys.argv[1] == 'no-json':
    print('not json')
    sys.exit(0)
import numpy as np
from benchmarks.profiling import emit_result, measure
r = measure(lambda: np.ones(2**20), warmup=0, repeat=1)
emit_result(dict(r, case=sys.argv[1], arr=np.arange(3), n=np.int64(7)))
'''


def test_run_case_json_round_trip(tmp_path):
    script = tmp_path / 'case.py'
    script.write_text(CASE)
    r = run_case([script, 'ok'])
    assert r['case'] == 'ok' and r['arr'] == [0, 1, 2] and r['n'] == 7
    assert r['wall_s'] > 0 and r['peak_mb'] > 0


def test_run_case_surfaces_the_crash(tmp_path):
    script = tmp_path / 'case.py'
    script.write_text(CASE)
    with pytest.raises(CaseError, match='exit code 1') as info:
        run_case([script, 'crash'])
    assert 'case exploded: bad input 42' in str(info.value)
    assert info.value.returncode == 1 and 'ValueError' in info.value.stderr
    with pytest.raises(CaseError, match='no JSON object'):
        run_case([script, 'no-json'])


def _fails(x):
    raise KeyError(f'child failed on {x}')


def test_call_in_fresh_process():
    assert call_in_fresh_process(divmod, 7, 2) == (3, 1)
    with pytest.raises(KeyError, match='child failed on 5'):
        call_in_fresh_process(_fails, 5)


def test_ratio_table():
    results = dict(base=dict(infer=dict(s=2.0), mb=10.0), new=dict(infer=dict(s=1.0), mb=0.0))
    table = ratio_table(results, [('new', 'base'), ('base', 'new')],
                        {'time': 'infer.s', 'memory': lambda r: r['mb']})
    lines = table.splitlines()
    assert lines[0] == '| case | baseline | time | memory |'
    assert lines[2] == '| new | base | 0.500 | 0.000 |'
    assert lines[3] == '| base | new | 2.000 | n/a |'
    assert format_table(['a'], [[1.23456]], '.1f').splitlines()[-1] == '| 1.2 |'


@linux_only
def test_cpu_seconds_counts_running_child_processes():
    """A live child (as in a persistent worker pool) that burns ~0.3 s of CPU is counted."""
    import subprocess
    burn = ('import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n'
            'print("done", flush=True)\ntime.sleep(30)\n')
    before_own, before_all = cpu_seconds(), cpu_seconds(children=True)
    child = subprocess.Popen([sys.executable, '-c', burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == 'done'  # burnt, still running
        own, total = cpu_seconds() - before_own, cpu_seconds(children=True) - before_all
        assert total - own >= 0.3 - 0.02, (own, total)
    finally:
        child.kill()
        child.wait()


# 32 MiB as 512 blocks of 64 KiB (below glibc's mmap threshold: they live on the C heap); freed
# blocks stay resident and a second round reuses them.
HEAP_REUSE_CASE = '''
from benchmarks.profiling import emit_result, peak_memory

def heap_blocks():
    blocks = [bytearray(64 * 1024) for _ in range(512)]
    return len(blocks)

heap_blocks()  # earlier work: its freed blocks are still resident
_, again = peak_memory(heap_blocks)
emit_result(again)
'''


@linux_only
def test_peak_memory_counts_reused_freed_heap_memory():
    """Memory freed by earlier work and reused counts in the peak (glibc malloc_trim first)."""
    again = run_case(['-c', HEAP_REUSE_CASE])
    assert 32 * 0.9 <= again['work_mb'] <= 32 * 1.2, again
