# Copyright (c) mmaffseg contributors. All rights reserved.
"""Bad configs and arguments stop the real tools before anything is built: one line naming the
file or the setting, exit status 2 (mmaffseg.cli.config_checks, cfg_options)."""
import argparse
import os
import os.path as osp

import pytest
from test_cli.test_tools_round_trip import QUICKSTART, _options
from tool_runner import REPO, one_error_line, run_tools_in_one_process

from mmaffseg.cli import add_launcher_args, load_config

ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_tools_name_bad_configs_settings_and_sizes(tiny_synthetic_root, tmp_path):
    """Each of these was a traceback (or a run with the bad setting) on the original tools.
    All run in one interpreter: they fail before anything is built (on the tiny data and one
    iteration, should one get through)."""
    base = osp.join(REPO, QUICKSTART)
    missing_base = _write(tmp_path / 'missing_base.py', "_base_ = ['./no_such_base.py']\n")
    broken = _write(tmp_path / 'broken.py', 'a = 1\nmodel = dict(type="X",\nb = 2\n')
    broken_base = _write(tmp_path / 'uses_broken.py', "_base_ = ['./broken.py']\n")
    not_config = _write(tmp_path / 'cfg.txt', "model = dict(type='X')\n")
    work = str(tmp_path / 'work')

    def train(config, *options):
        tiny = _options(tiny_synthetic_root, 1) if config == base else []
        return ['tools/train.py', config, '--work-dir', work] + (
            ['--cfg-options', *tiny, *options] if options else [])

    def export(*shapes):
        return ['tools/deployment/pytorch2onnx.py', QUICKSTART, str(tmp_path / 'none.pth'),
                '--dynamic', *shapes]

    cases = {
        'missing _base_': (train(missing_base), [str(tmp_path / 'no_such_base.py'),
                                                 'CONFIG', missing_base]),
        'syntax error': (train(broken), [f'config {broken}, line 2', 'never closed']),
        'not a config file': (train(not_config), [f'CONFIG: {not_config} is not a config file',
                                                  'suffix .txt', '.py/.json/.yaml/.yml']),
        'syntax error in a base': (train(broken_base), [f'config {broken}, line 2']),
        'negative lr': (train(base, 'optim_wrapper.optimizer.lr=-0.01'),
                        ['optim_wrapper.optimizer.lr = -0.01', '>= 0']),
        'max_iters=1O': (train(base, 'train_cfg.max_iters=1O'),
                         ['train_cfg.max_iters=1O', 'expected an integer', "'1O'"]),
        'train_dataloader.batchsize': (train(base, 'train_dataloader.batchsize=1'),
                                       ['train_dataloader.batchsize',
                                        'did you mean train_dataloader.batch_size']),
        'randomness.seeds': (train(base, 'randomness.seeds=1'),
                             ['randomness.seeds', 'did you mean randomness.seed']),
        'crop size != data_preprocessor.size': (
            train(base, 'model.data_preprocessor.size=[32,64]'),
            ['train_dataloader.dataset.pipeline.3.crop_size (RandomCrop) is (64, 128)',
             'model.data_preprocessor.size is (32, 64)']),
        '--shape 0 0': (export('--shape', '0', '0'),
                        ['argument --shape: expected a positive integer, got 0']),
        '--shape 64 -8': (export('--shape', '64', '-8'),
                          ['argument --shape: expected a positive integer, got -8']),
        '--verify-shape 0 64': (export('--shape', '64', '64', '--verify-shape', '0', '64'),
                                ['argument --verify-shape: expected a positive integer, got 0']),
    }
    results = run_tools_in_one_process([argv for argv, _ in cases.values()], env=ENV)
    for (what, (_, names)), (code, err) in zip(cases.items(), results):
        line = one_error_line(code, err, what)
        for name in names:
            assert name in line, f'{what}: {name!r} not in {line!r}'
    assert not osp.exists(work)


def _cfg_options(*words: str) -> dict:
    parser = add_launcher_args(argparse.ArgumentParser(prog='train.py'))
    return parser.parse_args(['--cfg-options', *words]).cfg_options


def test_cfg_options_keep_a_value_with_spaces(tmp_path):
    """mmengine's DictAction deleted the space: the synthetic dataset was generated in
    /data/mydata instead of '/data/my data'."""
    root = str(tmp_path / 'my data')
    options = _cfg_options(f'train_dataloader.dataset.data_root={root}',
                           'train_cfg.max_iters=3', 'model.data_preprocessor.size=[64, 128]',
                           'a=(1, 2)', 'b=None', 'c= 7 ')
    assert options == {'train_dataloader.dataset.data_root': root, 'train_cfg.max_iters': 3,
                       'model.data_preprocessor.size': [64, 128], 'a': (1, 2), 'b': None,
                       'c': 7}
    cfg = load_config(osp.join(REPO, QUICKSTART), options)
    assert cfg.train_dataloader.dataset.data_root == root
    # a list item with a space cannot be kept: refused, naming it
    with pytest.raises(SystemExit) as e:
        _cfg_options('x=[/data/my data,b]')
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        _cfg_options('no_equals_sign')
