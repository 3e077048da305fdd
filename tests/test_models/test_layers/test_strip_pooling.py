# Copyright (c) mmaffseg contributors. All rights reserved.
"""SPM: gate semantics, mmcv ResNet plugin use, shapes, gradients, norm switch, errors."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmaffseg.models.layers import SPM, DualStripPooling


def test_strip_pooling_is_broadcast_sum_of_strips():
    torch.manual_seed(0)
    pool = DualStripPooling(3, 4).eval()
    x = torch.randn(2, 3, 5, 7)
    out = pool(x)
    rows = pool.conv_h(x.mean(3, keepdim=True)).expand(-1, -1, 5, 7)
    cols = pool.conv_w(x.mean(2, keepdim=True)).expand(-1, -1, 5, 7)
    torch.testing.assert_close(out, rows + cols)


@pytest.mark.parametrize('size', [(1, 1), (5, 7), (13, 4)])
def test_spm_gates_its_input(size):
    torch.manual_seed(0)
    spm = SPM(6).eval()
    x = torch.randn(2, 6, *size)
    gate = spm.gate(x)
    assert gate.shape == x.shape and bool(((gate > 0) & (gate < 1)).all())
    torch.testing.assert_close(spm(x), x * gate)


def test_spm_gradients_reach_every_parameter():
    spm = SPM(8).train()
    spm(torch.randn(2, 8, 6, 9)).square().sum().backward()
    for name, param in spm.named_parameters():
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), name


def test_spm_out_channels_only_for_gate():
    spm = SPM(8, out_channels=4)
    assert spm.gate(torch.randn(1, 8, 3, 3)).shape == (1, 4, 3, 3)
    with pytest.raises(ValueError, match='out_channels .4. must equal in_channels .8.'):
        spm(torch.randn(1, 8, 3, 3))


def test_spm_norm_switch():
    spm = SPM(8, norm_cfg=dict(type='SyncBN'))
    norms = [m for m in spm.modules() if isinstance(m, torch.nn.SyncBatchNorm)]
    assert len(norms) == 2
    assert not any(type(m) is torch.nn.BatchNorm2d for m in spm.modules())


def test_spm_as_mmcv_resnet_plugin():
    """The plugin's output replaces conv2's: it must be x * gate (the official use)."""
    init_default_scope('mmseg')
    backbone = MODELS.build(
        dict(type='ResNetV1c', depth=50, base_channels=8, stem_channels=16,
             plugins=[dict(cfg=dict(type='SPM'), position='after_conv2',
                           stages=(False, False, True, True))]))
    backbone.eval()  # mmseg's ResNet.train() returns None: no chaining
    names = sorted(n for n, m in backbone.named_modules() if isinstance(m, SPM))
    assert names == [f'layer3.{i}.spm' for i in range(6)] + [f'layer4.{i}.spm' for i in range(3)]
    seen = {}
    block = backbone.layer4[1]
    block.spm.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0], out=out))
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 35, 45))
    torch.testing.assert_close(seen['out'], seen['x'] * block.spm.gate(seen['x']))
    assert outs[-1].shape == (1, 256, 2, 2)  # plain ResNetV1c: output stride 32
