# Copyright (c) mmaffseg contributors. All rights reserved.
"""Golden parity with the official HANet code for every fixture in tests/data/golden/hanet.

Module cases (``kind == 'module'``, official ``HANet_Conv``) are built from ``meta.ctor``
through the generic argument mapping and loaded through the checkpoint converter. Model cases
(``kind == 'model'``, official ``DeepV3PlusHANet``) are built from
``configs/hanet/hanet_r101-d8_4xb2-80k_cityscapes-512x1024.py`` with the official options
mapped onto the head, the official 128-channel stem and BN instead of SyncBN; they compare the
logits, the four attention maps and the output of the third HANet.
"""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from golden import assert_close, case_paths, load_case
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from mmaffseg.models.layers import HANet, batch_row_positions, sinusoid_table
from mmaffseg.models.utils.hanet_converter import (
    convert_official_hanet,
    official_hanet_head_kwargs,
    official_hanet_kwargs,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HANET_CONFIG = osp.join(REPO, 'configs', 'hanet', 'hanet_r101-d8_4xb2-80k_cityscapes-512x1024.py')
CASES = case_paths('hanet')
MODULE_CASES = [p for p in CASES if load_case(p).meta['kind'] == 'module']
MODEL_CASES = [p for p in CASES if load_case(p).meta['kind'] == 'model']


def _name(path: str) -> str:
    return osp.basename(path)[:-4]


def _row_positions(case) -> torch.Tensor:
    """The official position map's column 0, the only part the reference reads."""
    return torch.from_numpy(case.inputs['pos_h'][:, :, 0]).long()


def _load(model: torch.nn.Module, case) -> None:
    missing, unexpected = model.load_state_dict(convert_official_hanet(case.state_dict()),
                                                strict=False)
    assert not unexpected, unexpected
    assert all(k.endswith('num_batches_tracked') for k in missing), missing


def test_fixtures_present():
    assert {'hanet_conv_c64_o48_r8', 'hanet_conv_c40_o24_r4',
            'deepr101v3plusd_hanet_os8_128'} <= {_name(p) for p in CASES}


@pytest.mark.parametrize('path', CASES, ids=_name)
def test_sinusoid_table_matches_official(path):
    """Our frozen table (computed, not loaded) equals every table the reference stored."""
    tables = {k: v for k, v in load_case(path).params.items() if k.endswith('pos_layer.weight')}
    assert tables
    for key, table in tables.items():
        ours = sinusoid_table(*table.shape) + 1
        torch.testing.assert_close(ours, table, rtol=0, atol=1e-6, msg=key)


@pytest.mark.parametrize('path', MODULE_CASES, ids=_name)
def test_hanet_module_golden(path):
    case = load_case(path)
    module = HANet(**official_hanet_kwargs(case.meta['ctor']))
    _load(module, case)
    module.eval()
    x_lower = torch.from_numpy(case.inputs['x_lower'])
    x = torch.from_numpy(case.inputs['out'])
    with torch.no_grad():
        outputs = dict(out=module(x_lower, x, _row_positions(case)),
                       attention=module.attention(x_lower, x.shape[2], _row_positions(case)))
    assert set(outputs) == set(case.outputs)
    for name, value in outputs.items():
        assert_close(case, name, value)


def build_official_model(args: dict) -> torch.nn.Module:
    """Our HANet R-101 config with the official options and stem, BN instead of SyncBN."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(HANET_CONFIG)
    cfg.merge_from_dict(dict(model=dict(
        pretrained=None, backbone=dict(stem_channels=128),
        decode_head=official_hanet_head_kwargs(args))))
    if not args.get('aux_loss', True):
        cfg.model.auxiliary_head = None
    return revert_sync_batchnorm(MODELS.build(cfg.model))


@pytest.mark.parametrize('path', MODEL_CASES, ids=_name)
def test_hanet_model_golden(path):
    case = load_case(path)
    model = build_official_model(case.meta['ctor']['args'])
    _load(model, case)
    model.eval()
    head = model.decode_head
    img = torch.from_numpy(case.inputs['img'])
    row_positions = _row_positions(case)

    # the official fixture frame (a 1024-row image shown at 1/8) expressed as metainfo
    meta = dict(ori_shape=(1024, 1024), img_shape=tuple(img.shape[2:]),
                pad_shape=tuple(img.shape[2:]), scale_factor=(0.125, 0.125))
    assert torch.equal(batch_row_positions([meta] * img.shape[0]), row_positions)

    calls = {}
    for placement in head.hanet_placements:
        getattr(head, f'hanet_{placement}').register_forward_hook(
            lambda mod, args, out, p=placement: calls.__setitem__(p, (args, out)))
    with torch.no_grad():
        feats = model.extract_feat(img)
        logits = head.forward(feats, row_positions)
        outputs = dict(logits=resize(logits, size=img.shape[2:], mode='bilinear',
                                     align_corners=True))
        # official attention_i is the i-th HANet of layer4, aspp, bottleneck, decoder
        for i, placement in enumerate(head.hanet_placements):
            (lower, x, positions), _ = calls[placement]
            outputs[f'attention_{i}'] = getattr(head, f'hanet_{placement}').attention(
                lower, x.shape[2], positions)
        outputs['hanet2_out'] = calls['bottleneck'][1]
    assert set(outputs) == set(case.outputs)
    for name, value in outputs.items():
        assert_close(case, name, value)
    if model.with_auxiliary_head:
        _check_auxiliary_head(model, feats, case.state_dict())


def _check_auxiliary_head(model, feats, official):
    """The official ``dsn`` (3x3 conv with bias, BN, ReLU, 1x1) on layer3, computed from the
    official weights, equals our FCNHead with the conv bias folded into the BN."""
    def p(key):
        return official[f'dsn.{key}']

    with torch.no_grad():
        x = F.conv2d(feats[2], p('0.weight'), p('0.bias'), padding=1)
        x = F.batch_norm(x, p('1.running_mean'), p('1.running_var'), p('1.weight'),
                         p('1.bias'), eps=1e-5).relu()
        expected = F.conv2d(x, p('4.weight'), p('4.bias'))
        ours = model.auxiliary_head.forward(feats)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
