# Copyright (c) mmaffseg contributors. All rights reserved.
"""configs/benchmark: every method config differs from the baseline only in its method's keys.

Each config is read with mmengine (``Config.fromfile(...).to_dict()``), flattened to dotted keys
(list items indexed), and compared key by key with the DeepLabV3+ baseline; every key that
differs (or exists in one of the two only) must match the method's allowlist. A CRF variant's
wrapper (``CRFRefineSegmentor``) is unwrapped first: its segmentor is compared as ``model``,
the wrapper's own keys as ``model.crf_wrapper.*``. The same holds for the configs the synthetic
suite derives (tools/benchmark_suite.py adds the suite's options).
"""
import copy
import fnmatch
import functools
import os.path as osp

import pytest
from mmengine.config import Config
from tool_runner import REPO, load_tool

BENCH = osp.join(REPO, 'configs', 'benchmark')
BASELINE = 'deeplabv3plus'
_CRF = ['model.crf_wrapper.*', 'deeplabv2_r101_crf.*', 'deeplabv2_vgg16_crf.*']
# the method's own part: fnmatch patterns of dotted keys allowed to differ from the baseline
ALLOWED = {
    'deeplabv3plus': [],
    'deeplabv3plus-crf': _CRF,
    'hanet-neck': ['model.type', 'model.neck.*'],
    'hanet-head': ['model.type', 'model.decode_head.*', 'hanet_aspp_head.*'],
    'spnet': ['model.backbone.type', 'model.backbone.spm_cfg.*', 'model.backbone.spm_blocks.*',
              'model.decode_head.*'],
    'cpnet': ['model.decode_head.*'],
    'dsrl': ['model.type', 'model.downsample_factor', 'model.sr_decoder.*',
             'model.feature_transform.*', 'model.loss_sr.*', 'model.loss_fa.*'],
    'deeplabv2': ['model.decode_head.*'],
    'deeplabv2-crf': ['model.decode_head.*'] + _CRF,
}


@functools.lru_cache(maxsize=None)
def _tool():
    return load_tool('benchmark_suite.py')


def _flatten(cfg: dict) -> dict:
    """Dotted keys of ``cfg`` without mmengine's ``_scope_`` markers (``mmseg::`` bases add
    ``_scope_='mmseg'``, the default scope of every benchmark config anyway)."""
    return {k: v for k, v in _tool().flatten(_unwrap(cfg)).items()
            if not k.endswith('._scope_')}


def _unwrap(cfg: dict) -> dict:
    """A CRF wrapper's segmentor as ``model``, the wrapper's keys as ``model.crf_wrapper``."""
    cfg = copy.deepcopy(cfg)
    model = cfg['model']
    if model.get('type') == 'CRFRefineSegmentor':
        inner = model.pop('segmentor')
        inner['crf_wrapper'] = model
        cfg['model'] = inner
    return cfg


def drift(flat: dict, baseline: dict, allowed: list) -> list:
    """Dotted keys where ``flat`` differs from ``baseline`` outside the ``allowed`` patterns."""
    missing = object()
    return sorted(
        k for k in set(flat) | set(baseline)
        if flat.get(k, missing) != baseline.get(k, missing)
        and not any(fnmatch.fnmatchcase(k, p) for p in allowed))


def method_differences(flat: dict, baseline: dict) -> list:
    """Every dotted key where ``flat`` differs from ``baseline``."""
    return drift(flat, baseline, [])


@functools.lru_cache(maxsize=None)
def _flat_files() -> dict:
    suite = Config.fromfile(osp.join(BENCH, 'suites', 'cityscapes.py'))
    return {m: _flatten(Config.fromfile(osp.join(BENCH, 'suites', p)).to_dict())
            for m, p in suite.methods.items()}


def _flat_suite(name: str) -> dict:
    tool = _tool()
    suite, path = tool.load_suite(name)
    return {m: _flatten(tool.method_config(suite, path, m, 0, 'data/x').to_dict())
            for m in suite.methods}


def test_every_method_has_an_allowlist():
    suite = Config.fromfile(osp.join(BENCH, 'suites', 'cityscapes.py'))
    assert set(suite.methods) == set(ALLOWED)


@pytest.mark.parametrize('source', ['files', 'synthetic'])
def test_configs_differ_only_in_the_method_part(source):
    flats = _flat_files() if source == 'files' else _flat_suite('synthetic')
    baseline = flats[BASELINE]
    for method, flat in flats.items():
        assert drift(flat, baseline, ALLOWED[method]) == [], method
        if method != BASELINE:  # the method part is really there
            assert method_differences(flat, baseline), method


def test_protocol_values():
    """The shared protocol: R-50-D8 ResNetV1c from open-mmlab://resnet50_v1c, 512x1024 crops,
    80k SGD lr 0.01, 2 images per GPU, sliding-window single-scale test."""
    cfg = Config.fromfile(osp.join(BENCH, 'spnet.py'))
    assert cfg.model.backbone.depth == 50 and cfg.model.backbone.dilations == (1, 1, 2, 4)
    assert cfg.model.pretrained == 'open-mmlab://resnet50_v1c'
    assert cfg.model.backbone.multi_grid is None
    assert [t for t in cfg.train_pipeline if 'crop_size' in t][0]['crop_size'] == (512, 1024)
    assert cfg.train_cfg.max_iters == 80000 and cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 1024), stride=(341, 683))


@functools.lru_cache(maxsize=None)
def _cpnet() -> dict:
    return Config.fromfile(osp.join(BENCH, 'cpnet.py')).to_dict()


@pytest.mark.parametrize('key,value', [
    ('optim_wrapper.optimizer.lr', 0.02),
    ('train_pipeline.3.crop_size', (768, 768)),
    ('model.test_cfg.mode', 'whole'),
    ('model.backbone.contract_dilation', False),
    ('model.auxiliary_head.loss_decode.loss_weight', 1.0),
])
def test_drift_is_caught(key, value):
    """A benchmark config that changes a protocol key fails the comparison, naming the key."""
    cfg = Config(copy.deepcopy(_cpnet()))
    cfg.merge_from_dict({key: value}, allow_list_keys=True)
    baseline = _flat_files()[BASELINE]
    found = drift(_flatten(cfg.to_dict()), baseline, ALLOWED['cpnet'])
    assert found and all(k == key or k.startswith(key + '.') for k in found), found
