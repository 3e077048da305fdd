# Copyright (c) mmaffseg contributors. All rights reserved.
"""``--amp`` / ``--channels-last`` (mmaffseg.cli.training_precision), the one implementation of
tools/train.py and tools/benchmark_suite.py: the dtype per device, the optimizer wrapper and
loss scale they set, the errors for settings a device cannot run, and the train tool's
options."""
import pytest
import torch
from mmengine.config import Config
from tool_runner import run_tools_in_one_process

from mmaffseg.cli import amp_dtype, training_precision, use_amp, use_channels_last
from mmaffseg.utils.config_errors import ConfigCheckError

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason='checks a machine without CUDA')


def _cfg(**optim_wrapper) -> Config:
    return Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01),
                                          **optim_wrapper)))


@NO_CUDA
def test_dtype_per_device():
    assert amp_dtype('auto') == amp_dtype('bfloat16') == 'bfloat16'  # CPU autocast
    with pytest.raises(ConfigCheckError, match='--amp float16: autocast on CPU runs bfloat16'):
        amp_dtype('float16')
    # GPUs this machine cannot see (a Slurm submission node): a named dtype is taken as it is
    assert amp_dtype('float16', 'cuda') == 'float16'
    assert amp_dtype('bfloat16', 'cuda') == 'bfloat16'
    with pytest.raises(ConfigCheckError, match='sees no GPU.*--amp bfloat16'):
        amp_dtype('auto', 'cuda')
    with pytest.raises(ConfigCheckError, match='expected one of auto, bfloat16, float16'):
        amp_dtype('half')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_dtype_on_this_gpu():
    assert amp_dtype('auto') == ('bfloat16' if torch.cuda.is_bf16_supported() else 'float16')


@NO_CUDA
def test_use_amp_sets_wrapper_dtype_and_loss_scale():
    cfg = _cfg(type='OptimWrapper', clip_grad=None)
    assert training_precision(cfg) == dict(amp=None, channels_last=False)
    assert use_amp(cfg) == 'bfloat16'
    assert cfg.optim_wrapper.type == 'AnyDeviceAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.loss_scale == dict(enabled=False)  # bfloat16: no scaling
    assert cfg.optim_wrapper.clip_grad is None and cfg.optim_wrapper.optimizer.lr == 0.01
    cfg = _cfg()  # no type: mmengine's OptimWrapper
    assert use_amp(cfg, 'float16', 'cuda') == 'float16'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'  # mmseg's --amp
    assert training_precision(cfg) == dict(amp='float16', channels_last=False)


@NO_CUDA
def test_use_amp_keeps_a_float16_loss_scale_of_the_config():
    cfg = _cfg(type='AmpOptimWrapper', loss_scale=512.)
    use_amp(cfg, 'float16', 'cuda')
    assert cfg.optim_wrapper.loss_scale == 512.
    use_amp(cfg, 'bfloat16')
    assert cfg.optim_wrapper.loss_scale == dict(enabled=False)


def test_use_amp_refuses_other_wrappers():
    cfg = _cfg(type='OptimWrapperDict')
    with pytest.raises(ConfigCheckError, match='--amp needs optim_wrapper.type OptimWrapper or '
                       'AmpOptimWrapper, the config has OptimWrapperDict'):
        use_amp(cfg)


def test_use_channels_last_adds_the_hook_once():
    cfg = _cfg()
    cfg.custom_hooks = [dict(type='NumClassesCheckHook')]
    use_channels_last(cfg)
    use_channels_last(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == ['NumClassesCheckHook', 'ChannelsLastHook']
    assert training_precision(cfg) == dict(amp=None, channels_last=True)


@NO_CUDA
def test_train_tool_rejects_what_the_device_cannot_run(tmp_path):
    config = 'configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py'
    [(code, err)] = run_tools_in_one_process(
        [['tools/train.py', config, '--amp', 'float16', '--work-dir', str(tmp_path)]])
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        'train.py: error: --amp float16: autocast on CPU runs bfloat16 only; use --amp (or '
        '--amp bfloat16), or train on a GPU')
