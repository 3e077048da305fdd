# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/analysis_tools/benchmark.py: a bad argument of any target is one ``error:`` line and
exit status 2 (no traceback, no table of nonsense), reported before anything is measured."""
import pytest
from benchmarks import cli

CFG = 'configs/psa/psa-pseudo-labels_r50-d8_voc12aug.py'


@pytest.mark.parametrize('argv, expected', [
    (['dense-crf', '--iterations', '0'], '--iterations'),
    (['dense-crf', '--start-method', 'bogus'], '--start-method'),
    (['dense-crf', '--labels', '0'], '--labels'),
    (['dense-crf', '--images', '0'], '--images'),
    (['dense-crf', '--batches', '0'], '--batches'),
    (['dsrl', '--batch-size', '0'], '--batch-size'),
    (['context-modules', '--train-batch', '0', '--models', 'fcn'], '--train-batch'),
    (['wsss-pipeline', 'nonexist.py'], 'nonexist.py'),
    (['wsss-pipeline', CFG, '--images', '0'], '--images'),
    (['host-syncs', '--steps', '0'], '--steps'),
    (['host-syncs', '--baseline-rev', 'nosuchrev'], 'nosuchrev'),
    (['train-step', '--suite', 'nosuch'], 'nosuch'),
    (['train-step', '--batch', '0'], '--batch'),
    (['speed', CFG, '--repeat-times', '0'], '--repeat-times'),
    (['speed', CFG, '--num-images', '-1'], '--num-images'),
    (['cp-loss', '--batch', '0'], '--batch'),
    (['cp-loss', '--prior-sizes', '0'], '--prior-sizes'),
    (['random-walk', '--channels', '0'], '--channels'),
    (['random-walk', '--large-size', '0', '8'], '--large-size'),
])
def test_a_bad_argument_is_one_line_and_exit_2(argv, expected, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as e:  # argparse
        status = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, argv
    assert 'Traceback' not in '\n'.join(err)
    assert 'error: ' in err[-1] and expected in err[-1], err[-1]
