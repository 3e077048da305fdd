# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/test.py --show-dir, analysis_tools/benchmark.py, get_flops.py and trivial_baseline.py
run as users run them, on quick-start configs and the tiny synthetic dataset."""
import glob
import os.path as osp
import re

import pytest
from helpers import tiny_synthetic_overrides
from tool_runner import cfg_option_args, run_tool
from untrained import QUICKSTARTS, save_untrained, small_test_config

QUICKSTART = QUICKSTARTS['deeplabv3plus']


def _options(root: str) -> list:
    return cfg_option_args(tiny_synthetic_overrides(root))


def _run(args: list) -> str:
    return run_tool(args, timeout=600)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """family -> untrained checkpoint of its quick-start config."""
    folder = tmp_path_factory.mktemp('ckpt')
    return {
        family: save_untrained(small_test_config(QUICKSTARTS[family]),
                               str(folder / f'{family}.pth'))
        for family in ('deeplabv3plus', 'instance-embedding')
    }


@pytest.mark.parametrize('family', ['deeplabv3plus', 'instance-embedding'])
def test_test_py_show_dir_paints_every_image(family, checkpoints, tiny_synthetic_root,
                                             tmp_path):
    """The quick-start runtime paints every 15th validation image; --show-dir paints all."""
    show_dir = str(tmp_path / 'show')
    _run(['tools/test.py', QUICKSTARTS[family], checkpoints[family], '--work-dir',
          str(tmp_path / 'work'), '--show-dir', show_dir, '--cfg-options'] +
         _options(tiny_synthetic_root))
    painted = glob.glob(osp.join(show_dir, '**', '*.png'), recursive=True)
    assert len(painted) == 3, painted  # the 3 validation images


def test_benchmark_py(checkpoints, tiny_synthetic_root):
    out = _run(['tools/analysis_tools/benchmark.py', QUICKSTART, checkpoints['deeplabv3plus'],
                '--num-images', '2', '--warmup', '1', '--device', 'cpu', '--cfg-options'] +
               _options(tiny_synthetic_root))
    fps = re.findall(r'overall fps ([0-9.]+) img/s \(2 images, cpu\)', out)
    assert fps and float(fps[0]) > 0, out[-2000:]


def test_get_flops_py():
    out = _run(['tools/analysis_tools/get_flops.py', QUICKSTART, '--shape', '64', '128'])
    assert 'Input shape: (64, 128)' in out
    assert re.search(r'Flops: [0-9.]+[GM]', out) and re.search(r'Params: [0-9.]+[MK]', out), out


def test_trivial_baseline_py(tiny_synthetic_root):
    out = _run(['tools/analysis_tools/trivial_baseline.py', QUICKSTART, '--cfg-options'] +
               _options(tiny_synthetic_root))
    assert re.search(r'majority', out) and re.search(r'row prior', out), out[-2000:]
