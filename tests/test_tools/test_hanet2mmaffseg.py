# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/model_converters/hanet2mmaffseg.py and the key mapping behind it."""
import argparse
import os.path as osp
import runpy
import sys

import pytest
import torch
from converters.hanet_converter import convert_official_hanet
from golden import case_paths, load_case
from official_configs import official_hanet_head_kwargs, official_hanet_kwargs

from mmaffseg.models.layers import HANet

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'model_converters', 'hanet2mmaffseg.py')
MODULE_CASE = case_paths('hanet', 'hanet_conv_c64_o48_r8')[0]


def _run_tool(monkeypatch, *args):
    monkeypatch.setattr(sys, 'argv', [TOOL, *args])
    runpy.run_path(TOOL, run_name='__main__')


def test_cli_converts_a_dataparallel_checkpoint(tmp_path, monkeypatch):
    case = load_case(MODULE_CASE)
    src, dst = tmp_path / 'official.pth', tmp_path / 'out' / 'converted.pth'
    torch.save({'state_dict': {f'module.{k}': v for k, v in case.params.items()}}, src)
    _run_tool(monkeypatch, str(src), str(dst))
    converted = torch.load(dst, weights_only=True)['state_dict']
    module = HANet(**official_hanet_kwargs(case.meta['ctor']))
    module.load_state_dict(converted, strict=True)
    # the bias of the second conv went into the BN running mean
    torch.testing.assert_close(
        converted['conv_hidden.bn.running_mean'],
        case.params['attention_second.1.running_mean'] - case.params['attention_second.0.bias'])


def test_cli_refuses_pickled_objects_unless_trusted(tmp_path, monkeypatch):
    case = load_case(MODULE_CASE)
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save({'state_dict': case.params, 'args': argparse.Namespace(arch='hanet')}, src)
    with pytest.raises(SystemExit, match='Re-run with --trust'):
        _run_tool(monkeypatch, str(src), str(dst))
    _run_tool(monkeypatch, str(src), str(dst), '--trust')
    assert 'conv_attention.weight' in torch.load(dst, weights_only=True)['state_dict']


def test_unknown_keys_and_arguments_are_reported():
    case = load_case(MODULE_CASE)
    with pytest.raises(KeyError, match=r"not weights of an official HANet, e.g. "
                       r"\['attention_fourth.weight'\]"):
        convert_official_hanet(dict(case.params, **{'attention_fourth.weight': torch.ones(1)}))
    with pytest.raises(KeyError, match=r"official DeepV3PlusHANet.*\['fc.weight'\]"):
        convert_official_hanet({'layer0.0.weight': torch.ones(1), 'fc.weight': torch.ones(1)})
    with pytest.raises(KeyError, match="unknown official HANet_Conv argument 'width'"):
        official_hanet_kwargs(dict(in_channel=8, width=3))
    with pytest.raises(ValueError, match='is_encoding must be 0'):
        official_hanet_kwargs(dict(is_encoding=2))
    with pytest.raises(NotImplementedError, match='fifth HANet placement'):
        official_hanet_head_kwargs(dict(hanet=[1, 1, 1, 1, 1]))
    with pytest.raises(KeyError, match=r"unknown official HANet options \['hanet_loss'\]"):
        official_hanet_head_kwargs(dict(hanet_loss=1))


def test_official_options_map_onto_the_head():
    kwargs = official_hanet_head_kwargs(
        dict(hanet=[1, 0, 1, 1, 0], hanet_set=[3, 32, 2], hanet_pos=[1, 0], pos_rfactor=16,
             pooling='max', dropout=0.2, pos_noise=0.0, aux_loss=True))
    assert kwargs == dict(
        hanet_placements=('layer4', 'bottleneck', 'decoder'),
        hanet_cfg=dict(kernel_size=3, reduction=32, num_convs=2, pos_injection=1,
                       pos_encoding='learned', pos_rfactor=16, pooling='max',
                       dropout_ratio=0.2, pos_noise=0.0))
    HANet(64, 16, **kwargs['hanet_cfg'])  # the mapped arguments build
