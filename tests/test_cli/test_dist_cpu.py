# Copyright (c) mmaffseg contributors. All rights reserved.
"""Multi-process training on a machine without GPUs: tools/dist_train.sh over gloo."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from helpers import tiny_synthetic_overrides

import mmaffseg  # noqa: F401
from mmaffseg.cli import load_config, prepare_train_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QUICKSTART = osp.join(REPO, 'configs', 'quickstart',
                      'deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason='tests the CPU (gloo) path')
def test_dist_train_sh_two_cpu_processes(tiny_synthetic_root, tmp_path):
    """`bash tools/dist_train.sh CONFIG 2` trains and validates the quick-start on CPU."""
    opts = tiny_synthetic_overrides(tiny_synthetic_root)
    opts.update({'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                 'default_hooks.checkpoint.interval': 2, 'default_hooks.logger.interval': 1,
                 'default_hooks.visualization.draw': False})
    args = [f'{k}={v}' if not isinstance(v, list) else f'{k}=[{",".join(map(str, v))}]'
            for k, v in opts.items()]
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), QUICKSTART, '2', '--work-dir',
         str(tmp_path), '--cfg-options', *args],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert osp.isfile(tmp_path / 'iter_2.pth')
    logs = [osp.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs if f.endswith('.log')]
    text = ''.join(open(p).read() for p in logs)
    assert 'Distributed launcher: pytorch' in text and 'GPU number: 2' in text  # processes
    assert 'Iter(train) [2/2]' in text
    assert 'Iter(val) [2/2]' in text and 'mIoU' in text  # 3 val images over 2 processes


def test_sync_bn_on_cpu_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = load_config(QUICKSTART, {'model.backbone.norm_cfg.type': 'SyncBN'})
    with pytest.raises(ValueError, match=r'synchronised BatchNorm \(model.backbone.norm_cfg\), '
                       r'which needs GPUs'):
        prepare_train_cfg(cfg, QUICKSTART, str(tmp_path), launcher='pytorch')
    prepare_train_cfg(load_config(QUICKSTART), QUICKSTART, str(tmp_path), launcher='pytorch')
    prepare_train_cfg(cfg, QUICKSTART, str(tmp_path))  # one process: mmengine reverts SyncBN


def test_sync_bn_error_lists_every_key_and_the_options_that_fix_them(tmp_path, monkeypatch):
    """mmseg's own DeepLabV3+ Cityscapes config (SyncBN in backbone, decode and auxiliary heads)
    with mmengine's ``sync_bn`` on: every key is named, and the --cfg-options the message gives,
    applied as given, make the config pass."""
    import argparse

    from mmengine.config import DictAction

    from mmaffseg.utils.compat import scoped_config_path
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    config = scoped_config_path(
        'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py')
    with pytest.raises(ValueError) as error:
        prepare_train_cfg(load_config(config, {'sync_bn': 'torch'}), config, str(tmp_path),
                          launcher='pytorch')
    message = str(error.value)
    assert '...' not in message
    assert ('synchronised BatchNorm (model.backbone.norm_cfg, model.decode_head.norm_cfg, '
            "model.auxiliary_head.norm_cfg, sync_bn='torch')") in message
    words = message.split('--cfg-options ', 1)[1].split(', or run on GPUs')[0].split()
    assert words == ['model.backbone.norm_cfg.type=BN', 'model.decode_head.norm_cfg.type=BN',
                     'model.auxiliary_head.norm_cfg.type=BN', 'sync_bn=None']
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = {'sync_bn': 'torch', **parser.parse_args(['--cfg-options'] + words).cfg_options}
    prepare_train_cfg(load_config(config, options), config, str(tmp_path), launcher='pytorch')


def test_torchrun_failure_report_names_a_config_error(tmp_path):
    """torchrun's closing report (its own text, printed last) shows our one-line message."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=1',
         f'--master_port={_free_port()}', osp.join(REPO, 'tools', 'train.py'), QUICKSTART,
         '--launcher', 'pytorch', '--work-dir', str(tmp_path),
         '--cfg-options', 'model.backbone.norm_cfg.type=SyncBN',
         'model.decode_head.norm_cfg.type=SyncBN'],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    report = out[out.rindex('Root Cause (first observed failure)'):]
    assert 'train.py: error: the config uses synchronised BatchNorm' in report, report
    assert ('--cfg-options model.backbone.norm_cfg.type=BN model.decode_head.norm_cfg.type=BN'
            in report), report
    assert 'To enable traceback see' not in report


def test_exit_with_error_writes_the_torchelastic_error_file(tmp_path, monkeypatch, capsys):
    from mmaffseg.cli.errors import config_errors_exit
    from mmaffseg.utils.config_errors import ConfigCheckError
    error_file = tmp_path / 'error.json'
    monkeypatch.setenv('TORCHELASTIC_ERROR_FILE', str(error_file))
    monkeypatch.setattr(sys, 'argv', ['train.py'])
    with pytest.raises(SystemExit) as exc, config_errors_exit():
        raise ConfigCheckError('model.x has y')
    assert exc.value.code == 2
    assert capsys.readouterr().err == 'train.py: error: model.x has y\n'
    # torch's own reader of the file: what the launcher prints as the root cause
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure
    failure = ProcessFailure(local_rank=0, pid=1, exitcode=2, error_file=str(error_file))
    assert failure.message['extraInfo']['py_callstack'] == 'train.py: error: model.x has y'
