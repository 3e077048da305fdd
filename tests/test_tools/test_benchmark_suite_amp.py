# Copyright (c) mmaffseg contributors. All rights reserved.
"""``tools/benchmark_suite.py --amp [--channels-last]`` trains every method of the suite alike:
for each method the suite trains (the CRF variants only evaluate their base's checkpoint), the
exact config the suite plans from its command line (synthetic suite, ``--tiny``, the tiny
synthetic data) takes two training steps on CPU: its optimizer wrapper is an
``AmpOptimWrapper`` autocasting to bfloat16 without a loss scaler, the backbone's features come
out in bfloat16 (autocast was on), every loss is finite and the weights changed. With
``--channels-last`` the batch reaches the backbone in channels-last."""
import logging
from types import SimpleNamespace

import pytest
import torch
from helpers import tiny_synthetic_overrides
from mmengine.logging import MMLogger
from mmengine.optim import AmpOptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS
from tool_runner import cfg_option_args, load_tool

from mmaffseg.engine import ChannelsLastHook

pytestmark = [
    pytest.mark.usefixtures('one_thread'),
    pytest.mark.skipif(torch.cuda.is_available() and not torch.cuda.is_bf16_supported(),
                       reason='the suite refuses --amp bfloat16 for these GPUs'),
]

TOOL = load_tool('benchmark_suite.py')
SUITE, SUITE_PATH = TOOL.load_suite('synthetic')
TRAINED = [m for m in SUITE.methods if m not in SUITE.get('eval_only', {})]
STEPS = 2
#: --amp alone chooses bfloat16 on CPU; on a GPU machine (where it chooses for the GPU) the
#: models of these tests, which stay on the CPU, are asked for bfloat16 by name
AMP = ['--amp'] if not torch.cuda.is_available() else ['--amp', 'bfloat16']


def _plan(root: str, method: str, *flags: str):
    """The run the suite plans for ``method`` (seed 0) from its command line."""
    options = tiny_synthetic_overrides(root)
    options['train_cfg.max_iters'] = STEPS
    args = TOOL.parse_args(['synthetic', '--tiny', '--data-root', root, '--work-dir', 'unused',
                            '--seeds', '0', '--methods', method, *flags, '--cfg-options'] +
                           cfg_option_args(options))
    [run] = TOOL.plan_runs(args, SUITE, SUITE_PATH, [method])
    return run


def _inner(model):
    return getattr(model, 'segmentor', model)


def _build(cfg):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.train()


def _train_steps(cfg, channels_last: bool = False):
    """Two training steps as mmengine's loop runs them; the losses, the dtypes of the
    backbone's last features and the memory formats of its input seen meanwhile."""
    model = _build(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    if channels_last:
        ChannelsLastHook().before_run(SimpleNamespace(model=model))
    seen = dict(features=[], inputs=[])
    inner = _inner(model)
    hooks = [
        inner.backbone.register_forward_hook(
            lambda m, a, out: seen['features'].append(out[-1].dtype)),
        inner.backbone.register_forward_pre_hook(
            lambda m, a: seen['inputs'].append(
                a[0].is_contiguous(memory_format=torch.channels_last))),
    ]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = []
    for _, batch in zip(range(STEPS), loader):
        losses.append(model.train_step(batch, optim_wrapper))
    for hook in hooks:
        hook.remove()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    return optim_wrapper, losses, seen, changed, model


@pytest.mark.parametrize('method', TRAINED)
def test_amp_bf16_training_steps_of_every_method(method, tiny_synthetic_root):
    run = _plan(tiny_synthetic_root, method, *AMP)
    assert run.cfg.optim_wrapper.dtype == 'bfloat16'
    optim_wrapper, losses, seen, changed, model = _train_steps(run.cfg)
    assert isinstance(optim_wrapper, AmpOptimWrapper)
    assert optim_wrapper.cast_dtype == torch.bfloat16
    assert not optim_wrapper.loss_scaler.is_enabled()  # bfloat16 needs no loss scaling
    assert seen['features'] == [torch.bfloat16] * STEPS, f'{method}: autocast was not on'
    for step in losses:
        assert step and all(torch.isfinite(v).all() for v in step.values()), (method, step)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed == trainable, f'{method}: unchanged {sorted(trainable - changed)[:5]}'


def test_suite_methods_are_all_covered():
    """Every method of the suite is trained here or evaluates a trained one."""
    eval_only = SUITE.get('eval_only', {})
    assert set(TRAINED) | set(eval_only) == set(SUITE.methods)
    assert set(eval_only.values()) <= set(TRAINED)


@pytest.mark.parametrize('method', ['deeplabv3plus', 'cpnet'])
def test_amp_with_channels_last(method, tiny_synthetic_root):
    run = _plan(tiny_synthetic_root, method, *AMP, '--channels-last')
    assert [h for h in run.cfg.custom_hooks if h['type'] == 'ChannelsLastHook']
    optim_wrapper, losses, seen, changed, model = _train_steps(run.cfg, channels_last=True)
    assert seen['inputs'] == [True] * STEPS and seen['features'] == [torch.bfloat16] * STEPS
    first_conv = next(m for m in _inner(model).backbone.modules()
                      if isinstance(m, torch.nn.Conv2d))
    assert first_conv.weight.is_contiguous(memory_format=torch.channels_last)
    for step in losses:
        assert all(torch.isfinite(v).all() for v in step.values()), (method, step)
