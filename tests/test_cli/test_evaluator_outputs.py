# Copyright (c) mmaffseg contributors. All rights reserved.
"""``tools/test.py --out DIR`` with a list of test evaluators (mmaffseg/cli/evaluator_outputs.py).

mmseg's tools/test.py (and ours before) set ``cfg.test_evaluator['output_dir']``, a TypeError
when the config evaluates with several metrics (the instance-embedding configs: ours and the
official cityscapesScripts one).
"""
import glob
import os.path as osp

import pytest
import torch

from mmaffseg.cli import load_config, prepare_test_cfg
from mmaffseg.utils.config_errors import ConfigCheckError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QUICKSTART = osp.join(REPO, 'configs', 'quickstart',
                      'deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py')


@pytest.fixture
def checkpoint(tmp_path) -> str:
    path = str(tmp_path / 'empty.pth')
    torch.save(dict(state_dict={}), path)
    return path


@pytest.mark.slow
def test_test_tool_out_with_a_list_evaluator_writes_predictions(tiny_synthetic_root, tmp_path):
    """The instance-embedding quick start (InstanceAPMetric + CityscapesInstanceMetric) through
    our tools/test.py --out: the official evaluator's files of every image land in DIR."""
    from helpers import tiny_synthetic_overrides
    from tool_runner import cfg_option_args, run_tool
    from untrained import QUICKSTARTS, save_untrained, small_test_config
    config = QUICKSTARTS['instance-embedding']
    assert isinstance(load_config(osp.join(REPO, config)).test_evaluator, list)
    ckpt = save_untrained(small_test_config(config), str(tmp_path / 'untrained.pth'))
    options = tiny_synthetic_overrides(tiny_synthetic_root)
    options['test_dataloader.dataset.pipeline.1.scale'] = (128, 64)  # predict at 64x128
    out = str(tmp_path / 'predictions')
    log = run_tool(['tools/test.py', config, ckpt, '--work-dir', str(tmp_path / 'work'),
                    '--out', out, '--cfg-options'] + cfg_option_args(options), timeout=600)
    line = [s for s in log.splitlines() if 'Iter(test)' in s][-1]
    for key in ('AP50', 'cityscapes/AP', 'cityscapes/AP50'):  # both metrics still ran
        assert f' {key}: ' in line, line
    images = sorted(glob.glob(osp.join(tiny_synthetic_root, 'leftImg8bit', 'val', '*',
                                       '*_leftImg8bit.png')))
    assert len(images) == 3
    written = sorted(osp.basename(p) for p in glob.glob(osp.join(out, '*_leftImg8bit.txt')))
    assert written == sorted(osp.basename(p)[:-len('.png')] + '.txt' for p in images)
    assert osp.isfile(osp.join(out, 'gtInstances.json'))  # evaluated from DIR, kept there


def test_test_out_routes_each_writing_evaluator_to_its_folder(checkpoint, tmp_path):
    """Several evaluators that write: one sub-folder each (mmseg's IoUMetric and
    CityscapesMetric write files of the same names); keep_results only where the class takes
    it (CityscapesMetric); evaluators without output_dir are left alone."""
    cfg = load_config(QUICKSTART)
    cfg.test_evaluator = [dict(type='IoUMetric'), dict(type='PseudoLabelMetric'),
                          dict(type='CityscapesMetric', output_dir='elsewhere'),
                          dict(type='IoUMetric', iou_metrics=['mDice'])]
    out = str(tmp_path / 'out')
    prepare_test_cfg(cfg, QUICKSTART, checkpoint, work_dir=str(tmp_path / 'w'), out=out)
    iou1, plm, city, iou2 = cfg.test_evaluator
    assert iou1 == dict(type='IoUMetric', output_dir=osp.join(out, 'IoUMetric_1'))
    assert plm == dict(type='PseudoLabelMetric')
    assert city == dict(type='CityscapesMetric', output_dir=osp.join(out, 'CityscapesMetric'),
                        keep_results=True)
    assert iou2 == dict(type='IoUMetric', iou_metrics=['mDice'],
                        output_dir=osp.join(out, 'IoUMetric_2'))
    # one writer (mmseg's single dict, or a list with one): DIR itself, as mmseg's test.py does
    for evaluator in (dict(type='IoUMetric'), [dict(type='PseudoLabelMetric'),
                                               dict(type='IoUMetric')]):
        cfg.test_evaluator = evaluator
        prepare_test_cfg(cfg, QUICKSTART, checkpoint, work_dir=str(tmp_path / 'w'), out=out)
        ev = cfg.test_evaluator if isinstance(evaluator, dict) else cfg.test_evaluator[1]
        assert ev.output_dir == out and 'keep_results' not in ev


def test_test_out_without_a_writing_evaluator_is_a_clear_error(checkpoint, tmp_path):
    cfg = load_config(QUICKSTART)
    cfg.test_evaluator = [dict(type='PseudoLabelMetric'), dict(type='PairRankingMetric')]
    with pytest.raises(ConfigCheckError, match=r'--out: no test evaluator .*PseudoLabelMetric, '
                       r'PairRankingMetric; none takes an output_dir'):
        prepare_test_cfg(cfg, QUICKSTART, checkpoint, out=str(tmp_path / 'out'))
