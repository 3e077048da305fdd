# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/analysis_tools/benchmark.py wsss-pipeline on the quick-start PSA config, one image."""
import re

import numpy as np
import pytest
import torch
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


def _comparison_rows(out: str) -> dict:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if len(cells) == 8 and cells[0].startswith('psa-pseudo-labels_r18'):
            rows[cells[1]] = cells[2:]
    return rows


def test_pipeline_benchmark_compares_with_the_official_way_in_the_same_run(capsys):
    assert cli.main(['wsss-pipeline', PSA_QUICKSTART, '--size', '40', '72', '--images', '2',
                     '--in-process', '--cam-inference', 'amp=bf16', 'fold_bn=false']) == 0
    out = capsys.readouterr().out
    rows = _comparison_rows(out)
    assert set(rows) == set(wsss_pipeline.STAGES) | {'**total**'}, out
    for stage, (base, proj, speedup, share_b, share_p, _) in rows.items():
        base, proj = float(base), float(proj)
        low, high = (base - 5e-4) / (proj + 5e-4), (base + 5e-4) / max(proj - 5e-4, 1e-9)
        assert low - 0.005 <= float(speedup.rstrip('x')) <= high + 0.005  # shown to 1 ms
        if stage != '**total**':
            for share, part, i in ((share_b, base, 0), (share_p, proj, 1)):
                total = float(rows['**total**'][i])  # seconds shown to 1 ms
                assert abs(float(share.rstrip(' %')) - 100 * part / total) < 0.06 + 0.2 / total
    # each label stage's agreement sits on the row of the stage that makes it
    for stage, label in (('CAM', 'cam'), ('random walk', 'rw'), ('dCRF', 'rw_crf')):
        value = re.fullmatch(rf'(\d+\.\d+) % \({label}\)', rows[stage][5])
        assert value and 0 <= float(value.group(1)) <= 100, rows[stage]
    assert rows['affinity'][5] == '-'
    assert 'project CAM settings amp=bf16, channels_last=False, fold_bn=False' in out


def test_float32_project_job_gives_the_official_labels():
    result = wsss_pipeline.measure_config(PSA_QUICKSTART, (40, 72), 1, 2)
    assert result['cam_inference'] == dict(amp='fp32', channels_last=False, fold_bn=True)
    assert result['agreement'] == dict(cam=100.0, rw=100.0, rw_crf=100.0)
    assert set(result['baseline']) == set(result['project']) == set(wsss_pipeline.STAGES)


def test_label_agreement_and_settings_parsing():
    a = np.array([[0, 1], [2, 3]])
    assert wsss_pipeline.label_agreement(a, a) == 100.0
    assert wsss_pipeline.label_agreement(a, torch.tensor([[0, 1], [2, 0]])) == 75.0
    with pytest.raises(ValueError, match=r'shapes \(2, 2\) and \(1, 4\)'):
        wsss_pipeline.label_agreement(a, a.reshape(1, 4))
    assert wsss_pipeline.parse_settings(['amp=bf16', 'fold_bn=False', 'channels_last=auto',
                                         'amp=none']) == dict(amp=None, fold_bn=False,
                                                              channels_last='auto')
    image = wsss_pipeline.synthetic_image(np.random.default_rng(0), (30, 40))
    assert image.shape == (30, 40, 3) and image.dtype == np.uint8 and image.std() > 10


def test_bad_cam_inference_option_is_one_line(capsys):
    assert cli.main(['wsss-pipeline', PSA_QUICKSTART, '--in-process', '--size', '40', '72',
                     '--images', '1', '--cam-inference', 'amp']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--cam-inference: expected KEY=VALUE, got 'amp'"), err
