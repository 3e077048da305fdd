# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/train.py -> --resume -> tools/test.py on the tiny synthetic dataset, as users run them."""
import glob
import os.path as osp
import re

import pytest
from helpers import tiny_synthetic_overrides
from tool_runner import cfg_option_args
from tool_runner import run_tool as _run

QUICKSTART = 'configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py'


def _options(root: str, max_iters: int) -> list:
    opts = tiny_synthetic_overrides(root)
    opts.update({
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 1,
        'default_hooks.logger.interval': 1,
        'default_hooks.visualization.interval': 1,
        # the tiny 64x128 images are trained whole: crop and pad to that size
        'train_dataloader.dataset.pipeline.3.crop_size': (64, 128),
        'model.data_preprocessor.size': [64, 128],
    })
    return cfg_option_args(opts)


def _miou(log: str) -> float:
    found = re.findall(r'mIoU: ([0-9.]+)', log)
    assert found, log[-3000:]
    return float(found[-1])


@pytest.mark.slow
def test_train_resume_test_round_trip(tiny_synthetic_root, tmp_path):
    work = str(tmp_path / 'work')
    log = _run(['tools/train.py', QUICKSTART, '--work-dir', work, '--cfg-options'] +
               _options(tiny_synthetic_root, 2))
    assert osp.isfile(osp.join(work, 'iter_2.pth')), log[-2000:]
    assert osp.isfile(osp.join(work, 'last_checkpoint'))
    _miou(log)  # validation ran at the end of training

    log = _run(['tools/train.py', QUICKSTART, '--work-dir', work, '--resume', '--cfg-options'] +
               _options(tiny_synthetic_root, 3))
    assert re.search(r'resumed epoch: \d+, iter: 2', log), log[-3000:]
    assert osp.isfile(osp.join(work, 'iter_3.pth'))
    val_miou = _miou(log)
    # painted validation predictions are saved by the visualization hook
    assert glob.glob(osp.join(work, '*', 'vis_data', 'vis_image', '*.png'))

    show_dir = str(tmp_path / 'show')
    log = _run(['tools/test.py', QUICKSTART, osp.join(work, 'iter_3.pth'), '--work-dir',
                str(tmp_path / 'test'), '--show-dir', show_dir, '--cfg-options'] +
               _options(tiny_synthetic_root, 3))
    assert _miou(log) == pytest.approx(val_miou, abs=1e-2)
    assert glob.glob(osp.join(show_dir, '**', '*.png'), recursive=True)

    # resuming from an explicit checkpoint path works too
    log = _run(['tools/train.py', QUICKSTART, '--work-dir', str(tmp_path / 'work2'), '--resume',
                osp.join(work, 'iter_2.pth'), '--cfg-options'] +
               _options(tiny_synthetic_root, 3))
    assert re.search(r'resumed epoch: \d+, iter: 2', log), log[-3000:]
