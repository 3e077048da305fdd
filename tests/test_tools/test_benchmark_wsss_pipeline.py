# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/analysis_tools/benchmark.py wsss-pipeline on the quick-start PSA config, one image."""
import re

from benchmarks import cli, wsss_pipeline

PSA_QUICKSTART = 'configs/psa/psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py'


def test_pipeline_benchmark_reports_every_stage(capsys):
    assert cli.main(['wsss-pipeline', PSA_QUICKSTART, '--size', '40', '72', '--images', '1',
                     '--in-process']) == 0
    out = capsys.readouterr().out
    assert '40x72 synthetic images' in out
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if len(cells) == 7 and cells[0].startswith('psa-pseudo-labels_r18'):
            rows[cells[1]] = [float(c) for c in cells[2:]]
    assert set(rows) == set(wsss_pipeline.STAGES) | {'**total**'}, out
    total = rows.pop('**total**')
    wall = sum(r[0] for r in rows.values())
    assert abs(total[0] - wall) < 2e-3 * len(rows) and all(r[0] > 0 for r in rows.values())
    assert total[2] == max(r[2] for r in rows.values()) > 0  # peak RSS, MiB
    # 10k-image hours = seconds per image * 10000 / 3600 (rounded to the table's digits)
    assert abs(total[3] - total[0] * 10000 / 3600) < 0.02
    assert abs(total[4] - total[1] * 10000 / 3600) < 0.02
    assert re.search(r'median of 1 image', out)
