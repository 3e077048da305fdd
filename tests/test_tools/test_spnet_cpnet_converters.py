# Copyright (c) mmaffseg contributors. All rights reserved.
"""SPNet / ContextPrior converters: every official key maps (or the error names it), the
constructor mappings reject unknown arguments, and the command-line tools round-trip a file
into a model that loads it strictly."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from converters.cpnet_converter import convert_official_cpnet
from converters.spnet_converter import convert_official_spnet, guess_spnet_source
from golden import case_paths, load_case
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from official_configs import (
    official_affinity_loss_cfg,
    official_cp_head_cfg,
    official_spnet_model_overrides,
    official_spnet_module_cfg,
)

import mmaffseg  # noqa: F401 (registers the modules)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_spnet_source_guess_and_mapping_of_every_fixture():
    for path in case_paths('spnet'):
        case = load_case(path)
        source = case.meta['reference'].split(':')[-1]
        state_dict = case.state_dict()
        assert guess_spnet_source(state_dict) == source
        converted = convert_official_spnet(state_dict)
        assert len(converted) == len(state_dict)
        assert list(converted.values())[0] is list(state_dict.values())[0]


def test_spnet_whole_model_keys():
    case = load_case(case_paths('spnet', 'spnet_r50*')[0])
    converted = convert_official_spnet(case.state_dict())
    for key in ('backbone.stem.0.weight', 'backbone.stem.7.running_var',
                'backbone.layer3.5.spm.strip_pool.conv_h.conv.weight',
                'backbone.layer4.0.downsample.1.weight', 'decode_head.mpms.1.pool_convs.1.bn.bias',
                'decode_head.conv_seg.bias', 'auxiliary_head.convs.0.bn.weight',
                'auxiliary_head.conv_seg.weight'):
        assert key in converted, key


def test_unknown_keys_and_arguments_are_named():
    with pytest.raises(KeyError, match='trans_layer.9.weight'):
        convert_official_spnet({'trans_layer.9.weight': torch.zeros(1)}, 'SPHead')
    with pytest.raises(KeyError, match='not an official SPNet'):
        convert_official_spnet({'foo.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match="'pool_type'"):
        official_spnet_module_cfg('StripPooling', dict(in_channels=8, pool_type='max'))
    with pytest.raises(KeyError, match="'deep_base'"):
        official_spnet_model_overrides(dict(nclass=19, deep_base=False))
    with pytest.raises(ValueError, match="reduction='mean'"):
        official_affinity_loss_cfg(dict(reduction='sum'))


def test_spnet_module_ctor_mapping():
    cfg = official_spnet_module_cfg('SPHead', dict(
        in_channels=64, out_channels=7, norm_layer='nn.BatchNorm2d',
        up_kwargs=dict(mode='bilinear', align_corners=True)))
    assert cfg == dict(type='SPHead', in_channels=64, num_classes=7, norm_cfg=dict(type='BN'),
                       align_corners=True, channels=16, dropout_ratio=0.1)
    overrides = official_spnet_model_overrides(dict(nclass=19, backbone='resnet101', aux=False,
                                                    spm_on=False))
    assert overrides['backbone'] == dict(stem_channels=128, depth=101, spm_blocks=('none', ) * 4)
    assert overrides['auxiliary_head'] is None


def test_cpnet_mapping_renames_only_the_separable_branches():
    case = load_case(case_paths('cpnet', 'cphead*')[0])
    model_sd = {'decode_head.' + k: v for k, v in case.state_dict().items()}
    model_sd['backbone.stem.0.weight'] = torch.zeros(1)
    converted = convert_official_cpnet(model_sd)
    assert 'decode_head.aggregation.vertical_first.1.conv.weight' in converted  # was t2
    assert 'decode_head.aggregation.horizontal_first.0.conv.bias' in converted  # was p1
    assert 'backbone.stem.0.weight' in converted and len(converted) == len(model_sd)
    cfg = official_cp_head_cfg(dict(case.meta['ctor'], drop_out_ratio=0.1,
                                    loss_prior_decode=dict(type='AffinityLoss', loss_weight=1.)))
    assert cfg['dropout_ratio'] == 0.1 and cfg['loss_prior_decode']['type'] == 'ContextPriorLoss'


@pytest.mark.parametrize('tool,fixture', [
    ('spnet2mmaffseg', 'spnet/sphead_c64_k7'),
    ('cpnet2mmaffseg', 'cpnet/cphead_c64_ch32_pc24_p8_k5_n5'),
])
def test_cli_round_trip(tmp_path, tool, fixture):
    case = load_case(case_paths(*fixture.split('/'))[0])
    src, dst = tmp_path / 'official.pth', tmp_path / 'ours.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in case.state_dict().items()}}, src)
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'model_converters', f'{tool}.py'),
                    str(src), str(dst)], check=True, cwd=REPO, capture_output=True)
    converted = torch.load(dst, weights_only=True)['state_dict']
    init_default_scope('mmseg')
    if tool == 'spnet2mmaffseg':
        model = MODELS.build(official_spnet_module_cfg('SPHead', case.meta['ctor']))
    else:
        model = MODELS.build(official_cp_head_cfg(case.meta['ctor']))
    model.load_state_dict(converted, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, converted[key]), key
