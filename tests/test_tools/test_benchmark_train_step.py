# Copyright (c) mmaffseg contributors. All rights reserved.
"""benchmark.py train-step: a suite method's training step in fp32, --amp and --amp
--channels-last, with the autocast dtype each mode ran, its time, memory and speed-up over fp32;
a method the suite does not train is refused in one line."""
import re

import torch
from benchmarks import cli
from tool_runner import run_tool


def test_train_step_rows_of_every_mode():
    out = run_tool(['tools/analysis_tools/benchmark.py', 'train-step', '--suite', 'synthetic',
                    '--methods', 'deeplabv3plus', '--modes', 'fp32', 'amp', 'amp+cl',
                    '--warmup', '0', '--repeat', '1'], timeout=600)
    rows = {m[1]: m for m in re.findall(
        r'^\| (deeplabv3plus) \| (\S+) \| (\w+) \| ([0-9.]+) \| ([0-9.]+) \| (\d+) \| (-?\d+) \| '
        r'([0-9.]+)x \| ([0-9.]+) \|$', out, re.M)}
    assert set(rows) == {'fp32', 'amp', 'amp+cl'}, out
    amp = 'bfloat16' if not torch.cuda.is_available() else rows['amp'][2]
    assert [rows[m][2] for m in ('fp32', 'amp', 'amp+cl')] == ['float32', amp, amp]
    assert rows['fp32'][7] == '1.00'  # its own speed-up
    for row in rows.values():
        assert float(row[3]) > 0 and float(row[4]) > 0 and int(row[5]) > 0
        assert 1 < float(row[8]) < 100  # a finite loss of a random-weight model
    assert 'load average after' in out


def test_a_method_that_is_not_trained_is_refused(capsys):
    assert cli.main(['train-step', '--suite', 'synthetic', '--methods', 'deeplabv2-crf']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and (  # the program name is pytest's here
        ": error: --methods: ['deeplabv2-crf'] are not trained methods of suite synthetic (["
        in err[0]), err
