# Copyright (c) mmaffseg contributors. All rights reserved.
"""benchmark.py dense-crf prints serial vs pooled throughput, ratio / W and CPU overhead."""
import re

import pytest
from tool_runner import run_tool

pytest.importorskip('pydensecrf.densecrf')


def test_benchmark_dense_crf_prints_pool_ratios():
    out = run_tool(['tools/analysis_tools/benchmark.py', 'dense-crf', '--size', '24', '32',
                    '--labels', '3', '--images', '4', '--batches', '1', '--workers', '2',
                    '--iterations', '2'], timeout=300)
    assert re.search(r'\| 3 \| serial \| [0-9.]+ \| 1\.000 \|', out), out
    row = re.search(r'\| 3 \| 2 workers \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| '
                    r'([0-9.]+) \| [0-9.]+ \| yes \|', out)
    assert row, out
    speed_up, per_worker = float(row[2]), float(row[3])
    assert abs(per_worker - speed_up / 2) < 2e-3
    assert 'load average' in out
    assert re.search(r'pool overhead per batch of 2 tiny images: [0-9.]+ ms with the kept pool, '
                     r'[0-9]+ ms with a pool started per batch', out), out
