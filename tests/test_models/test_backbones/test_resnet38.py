# Copyright (c) mmaffseg contributors. All rights reserved.
"""ResNet-38: the recipe-filled PSA golden models (through the converter), shapes, freezing."""
import os.path as osp
import runpy
import sys

import pytest
import torch
from benchmarks.dense_random_walk import dense_affinity_matrix
from converters.psa_converter import convert_official_psa
from golden import assert_close, case_paths, load_case
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.models.backbones import ResNet38

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
MODEL_CASES = case_paths('psa', 'resnet38_*')

# Which mmaffseg model reproduces each reference network, and how to read its outputs.
PSA_MODELS = {
    'network/resnet38_cls.py': dict(
        type='CAMClassifier', backbone=dict(type='ResNet38'),
        decode_head=dict(type='CAMHead', in_channels=4096, channels=4096, num_convs=0,
                         num_classes=20, in_index=-1),
        test_cfg=dict(mode='whole')),
    'network/resnet38_aff.py': dict(
        type='AffinityNet', backbone=dict(type='ResNet38'), decode_head=dict(type='AffinityHead'),
        test_cfg=dict(mode='whole')),
}


def model_outputs(model, img):
    if model.__class__.__name__ == 'CAMClassifier':
        return dict(cam=model.forward_cam(img),
                    logits=model.decode_head(model.extract_feat(img)))
    aff = model.predict_affinity(img)
    grid = tuple(-(-s // 8) for s in img.shape[-2:])
    return dict(aff=aff, aff_dense=dense_affinity_matrix(aff, grid))


def test_model_fixtures_exist():
    assert len(MODEL_CASES) >= 2


@pytest.mark.parametrize('path', MODEL_CASES, ids=lambda p: p.split('/')[-1])
def test_golden_psa_models(path):
    case = load_case(path)
    reference = next(k for k in PSA_MODELS if k in case.meta['reference'])
    model = MODELS.build(PSA_MODELS[reference])
    missing, unexpected = model.load_state_dict(
        convert_official_psa(case.state_dict()), strict=False)
    assert not unexpected
    assert all(k.endswith('num_batches_tracked') for k in missing), missing
    model.eval()
    with torch.no_grad():
        outputs = model_outputs(model, torch.from_numpy(case.inputs['img']))
    assert set(outputs) == set(case.outputs)
    for name, value in outputs.items():
        assert_close(case, name, value)


@pytest.fixture(scope='module')
def all_levels():
    torch.manual_seed(0)
    return ResNet38(out_indices=(0, 1, 2, 3, 4, 5), frozen_stages=1)


def test_levels_shapes_at_odd_size(all_levels):
    outs = all_levels(torch.randn(1, 3, 37, 50))
    channels = (128, 256, 512, 1024, 2048, 4096)
    sizes = [(19, 25), (10, 13)] + [(5, 7)] * 4
    assert [o.shape[1] for o in outs] == list(channels)
    assert [tuple(o.shape[2:]) for o in outs] == sizes
    assert all((o >= 0).all() for o in outs)  # activated (ReLU) maps


def test_frozen_stages_and_gradients(all_levels):
    all_levels.train()
    outs = all_levels(torch.randn(1, 3, 24, 24))
    sum(o.mean() for o in outs).backward()
    for name, param in all_levels.named_parameters():
        frozen = name.startswith(('stem.', 'layer1.'))
        assert param.requires_grad != frozen, name
        if not frozen:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    all_levels.zero_grad()


def test_norm_eval_keeps_statistics(all_levels):
    all_levels.norm_eval = True
    all_levels.train()
    norm = all_levels.layer4[0].norm1
    before = norm.running_mean.clone()
    all_levels(torch.randn(2, 3, 16, 16))
    torch.testing.assert_close(norm.running_mean, before)
    assert not norm.training and all_levels.layer4[0].conv1.training
    all_levels.norm_eval = False


def test_bad_arguments():
    with pytest.raises(ValueError, match='out_indices must lie in 0..5'):
        ResNet38(out_indices=(6, ))
    with pytest.raises(ValueError, match='frozen_stages must lie in -1..6'):
        ResNet38(frozen_stages=7)


def test_converter_keys_and_cli(tmp_path, monkeypatch):
    keys = ['module.conv1a.weight', 'b2.bn_branch2a.weight', 'b4_5.conv_branch2b1.weight',
            'b7.conv_branch1.weight', 'bn7.running_var', 'fc8.weight', 'f8_5.weight', 'f9.weight']
    official = {key: torch.ones(i + 1) for i, key in enumerate(keys)}
    assert list(convert_official_psa(official)) == [
        'backbone.stem.weight', 'backbone.layer1.0.norm1.weight',
        'backbone.layer3.5.conv2.weight', 'backbone.layer6.0.downsample.weight',
        'backbone.final_norm.running_var', 'decode_head.conv_seg.weight',
        'decode_head.lateral_convs.2.conv.weight', 'decode_head.fuse_conv.conv.weight']
    with pytest.raises(KeyError, match='not weights of an official PSA ResNet-38'):
        convert_official_psa({'linear1000.weight': torch.ones(1)})
    src, dst = tmp_path / 'psa.pth', tmp_path / 'out' / 'mm.pth'
    torch.save(official, src)
    monkeypatch.setattr(sys, 'argv', ['resnet38_2mmaffseg.py', str(src), str(dst)])
    runpy.run_path(osp.join(REPO, 'tools/model_converters/resnet38_2mmaffseg.py'),
                   run_name='__main__')
    saved = torch.load(dst, weights_only=True)['state_dict']
    assert saved['decode_head.fuse_conv.conv.weight'].numel() == 8
