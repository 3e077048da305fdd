# Copyright (c) mmaffseg contributors. All rights reserved.
"""benchmark.py cp-loss prints ours against its floor, the materialised loss and the loss before
its kernels were merged (the baseline): same loss, fewer operations."""
import re

import torch
from benchmarks import cp_loss
from tool_runner import run_tool


def test_benchmark_cp_loss_prints_floor_and_ratios():
    out = run_tool(['tools/analysis_tools/benchmark.py', 'cp-loss', '--prior-sizes', '12',
                    '--repeat', '1', '--copy-mib', '8'], timeout=300)
    losses = {}
    for size in (12, ):
        for variant in ('ours', 'baseline', 'materialised'):
            row = re.search(rf'^\s+{size}\s+{size * size}\s+{variant}\s+([0-9.]+)\s', out, re.M)
            assert row, out
            losses[size, variant] = float(row[1])
        assert losses[size, 'ours'] == losses[size, 'materialised']
        floor = re.search(rf'^\s+{size}' + r'\s+([0-9.]+|nan)' * 10 + r'\s*$', out, re.M)
        assert floor, out
        values = [float(v) for v in floor.groups()]
        mem_floor, pass_fwd, pass_bwd, floor_s, ours_s, ratio = values[1:7]
        assert abs(floor_s - max(mem_floor, pass_fwd + pass_bwd)) <= 0.02  # printed rounded
        assert ours_s >= 0 and (ratio > 0 or ratio != ratio)  # nan: 0 s floor
    # the same loss with fewer operations than before the kernels were merged
    assert losses[12, 'baseline'] == losses[12, 'ours']
    row = re.search(r'^ours / baseline .*\n.*\n\s+12\s+([0-9.]+)\s+([0-9.]+)\s+(\d+)\s+(\d+)\s+'
                    r'([0-9.e+-]+)\s+([0-9.e+-]+)\s*$', out, re.M)
    assert row, out
    assert int(row[3]) < int(row[4]), out
    assert float(row[5]) == 0 and float(row[6]) < 1e-6  # gradients equal to rounding
    assert 'load average after' in out


def test_floor_counts_one_read_and_one_write():
    tool = cp_loss
    prior, label = tool.make_inputs(6, 2, 5)
    assert prior.shape == (2, 36, 36) and label.shape == (2, 36)
    floor = tool.measure_floor(prior, block_elems=100, repeat=1, copy_mib=4)
    assert floor['bytes'] == 3 * 2 * 36 * 36 * 4  # read P forward, read P + write dP backward
    assert floor['bandwidth_gbs'] > 0 and floor['memory_floor_s'] > 0
    assert floor['pass_floor_s'] == floor['pass_fwd']['wall_s'] + floor['pass_bwd']['wall_s']
    assert torch.isfinite(torch.tensor(floor['pass_floor_cpu_s']))


def test_baseline_equals_ours_to_rounding():
    """The unmerged forward (the benchmark's baseline) and ours: same loss and gradient."""
    from benchmarks.cp_loss_baseline import context_prior_loss_unmerged

    from mmaffseg.models.losses import context_prior_loss
    prior, label = cp_loss.make_inputs(6, 2, 5)
    label[0, :4] = 255
    for form in ('official', 'paper'):
        grads = []
        for fn in (context_prior_loss_unmerged, context_prior_loss):
            p = prior.clone().requires_grad_()
            loss = fn(p, label, form=form, block_elems=2 * 36 * 5)  # partial last block
            loss.backward()
            grads.append((loss.detach(), p.grad))
        torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-6, atol=0)
        torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5,
                                   atol=1e-6 * float(grads[1][1].abs().max()))
