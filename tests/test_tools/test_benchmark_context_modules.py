# Copyright (c) mmaffseg contributors. All rights reserved.
"""benchmark.py context-modules runs its cases in subprocesses and prints the ratio table."""
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark.py')


@pytest.mark.slow
def test_benchmark_prints_table_and_ratios(tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, TOOL, 'context-modules', '--size', '32', '64', '--threads', '1',
         '--warmup', '0', '--repeat', '1', '--models', 'cpnet', '--out', str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the module's baselines are added and measured in the same run
    assert '| cpnet | fcn |' in proc.stdout and '| cpnet | pspnet |' in proc.stdout
    results = json.loads(out.read_text())['results']
    assert set(results) == {'fcn', 'pspnet', 'cpnet'}
    for r in results.values():
        assert r['infer']['gflops'] > 0 and r['infer']['params_m'] > 1
        assert r['train']['cpu_s'] > 0 and r['train']['peak_mb'] > 0
    # CPNet adds the aggregation module and the prior layers to a PSPNet-sized model
    assert results['cpnet']['infer']['params_m'] > results['pspnet']['infer']['params_m']
