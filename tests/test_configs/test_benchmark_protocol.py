# Copyright (c) mmaffseg contributors. All rights reserved.
"""configs/benchmark: the baseline is mmseg's own config, and every method config differs from
the baseline only in its method's keys.

Each config is read with mmengine (``Config.fromfile(...).to_dict()``), flattened to dotted keys
(list items indexed), and compared key by key; every key that differs (or exists in one of the
two only) must match an allowlist. The baseline against mmseg's
``deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py`` (``FROM_MMSEG``, each key with its
reason); every method against the baseline (``ALLOWED``). A CRF variant's wrapper
(``CRFRefineSegmentor``) is unwrapped first: its segmentor is compared as ``model``, the
wrapper's own keys as ``model.crf_wrapper.*``. The same holds for the configs the suites derive
(tools/benchmark_suite.py adds the suite's options).
"""
import copy
import fnmatch
import functools
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hub import get_config
from tool_runner import REPO, load_tool

BENCH = osp.join(REPO, 'configs', 'benchmark')
BASELINE = 'deeplabv3plus'
MMSEG_BASELINE = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'
_CROP = ("RandomCropWithOffset: mmseg's RandomCrop (same arguments, same crops) that also "
         'records where the crop lies, which HANet needs')
_META = "PackSegInputs keeps the crop's offset: mmseg's default meta_keys + 'crop_offset'"
# Where the benchmark baseline may differ from mmseg's own config: fnmatch pattern -> reason.
FROM_MMSEG = {
    'custom_imports.*': 'imports mmaffseg (registers RandomCropWithOffset)',
    'bench_*': "protocol.py's variables for the method configs; nothing reads them at run time",
    'randomness.*': "the run's seed (the suite sets one per run; mmseg's config draws one)",
    'train_pipeline.3.type': _CROP,
    'train_dataloader.dataset.pipeline.3.type': _CROP,
    'train_pipeline.6.meta_keys.*': _META,
    'train_dataloader.dataset.pipeline.6.meta_keys.*': _META,
    'model.backbone.multi_grid': "None, ResNetV1c's default (the same network), written out so "
                                 "that SPNet's backbone, whose base sets a multi-grid, takes it",
    'data_preprocessor.size.*': "mmseg's module-level variable, read by nothing at run time; the "
                              "model's data_preprocessor.size, which is used, is the same",
}
# Methods evaluated other than on the whole image (the protocol's sliding windows), and why.
DECLARED_SLIDE = {'cpnet': "its prior grid fixes the input size (the official head asserts it)"}
_CRF = ['model.crf_wrapper.*', 'deeplabv2_r101_crf.*', 'deeplabv2_vgg16_crf.*']
# the method's own part: fnmatch patterns of dotted keys allowed to differ from the baseline
ALLOWED = {
    'deeplabv3plus': [],
    'deeplabv3plus-crf': _CRF,
    'hanet-neck': ['model.type', 'model.neck.*'],
    'hanet-head': ['model.type', 'model.decode_head.*', 'hanet_aspp_head.*'],
    'spnet': ['model.backbone.type', 'model.backbone.spm_cfg.*', 'model.backbone.spm_blocks.*',
              'model.decode_head.*'],
    'cpnet': ['model.decode_head.*', 'model.test_cfg.*'],  # DECLARED_SLIDE
    'deeplabv3plus-half-sssr': ['model.type', 'model.downsample_factor'],
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


@functools.lru_cache(maxsize=None)
def _suite_configs(name: str) -> dict:
    tool = _tool()
    suite, path = tool.load_suite(name)
    return {m: tool.method_config(suite, path, m, 0, 'data/cityscapes/') for m in suite.methods}


def _flat_suite(name: str) -> dict:
    return {m: _flatten(cfg.to_dict()) for m, cfg in _suite_configs(name).items()}


@pytest.mark.parametrize('source', ['file', 'suite'])
def test_baseline_is_mmsegs_own_config(source):
    """The baseline, as its file reads and as the Cityscapes suite runs it, is mmseg's
    DeepLabV3+ R-50-D8 80k Cityscapes config up to the keys of FROM_MMSEG (whole-image test
    included)."""
    mmseg = _flatten(get_config(MMSEG_BASELINE).to_dict())
    ours = (_flat_files() if source == 'file' else _flat_suite('cityscapes'))[BASELINE]
    assert drift(ours, mmseg, list(FROM_MMSEG)) == []
    assert mmseg['model.test_cfg.mode'] == ours['model.test_cfg.mode'] == 'whole'
    for pattern in FROM_MMSEG:  # every exception is used
        assert any(fnmatch.fnmatchcase(k, pattern) for k in method_differences(ours, mmseg)), \
            pattern


def _tool_suite(name: str) -> Config:
    return _tool().load_suite(name)[0]


@pytest.mark.parametrize('suite', ['cityscapes', 'synthetic'])
def test_every_method_is_tested_on_the_whole_image_unless_declared(suite):
    tool = _tool()
    for method, cfg in _suite_configs(suite).items():
        base = _tool_suite(suite).get('eval_only', {}).get(method, method)
        label = tool.test_mode_label(cfg)
        if base in DECLARED_SLIDE:
            window = cfg.bench_slide_test_cfg
            assert label == 'slide {}x{} stride {}x{}'.format(
                *window.crop_size, *window.stride), method
        else:
            assert label == 'whole', method
        # --test-mode slide: every method on the protocol's windows (a CRF variant's segmentor)
        slide = copy.deepcopy(cfg)
        tool._use_slide_test(slide, method)
        assert slide.model.get('segmentor', slide.model).test_cfg == cfg.bench_slide_test_cfg
    wrapped = 'deeplabv3plus-crf'
    cfg = tool.method_config(*tool.load_suite(suite), wrapped, 0, 'data/x', test_mode='slide')
    assert tool.test_mode_label(cfg).startswith('slide ')


def test_cityscapes_windows_are_the_training_crop():
    """CPNet's windows (and --test-mode slide's): the 512x1024 training crop, 3 x 3 windows on
    a 1024x2048 image, as many as the prior grid was built for."""
    cfg = _suite_configs('cityscapes')['cpnet']
    crop = [t for t in cfg.train_pipeline if 'crop_size' in t][0]['crop_size']
    assert tuple(cfg.model.test_cfg.crop_size) == tuple(crop) == (512, 1024)
    assert tuple(cfg.model.decode_head.prior_size) == (512 // 8, 1024 // 8)
    assert _tool()._slide_windows(cfg.model.test_cfg, (1024, 2048)) == 9


@pytest.mark.parametrize('source', ['files', 'synthetic'])
def test_dsrl_is_its_half_baseline_plus_the_sr_and_fa_branches(source):
    """DSRL's claim is over the same network on the same halved input: the suite's
    deeplabv3plus-half-sssr is DSRL without its training branches."""
    flats = _flat_files() if source == 'files' else _flat_suite('synthetic')
    branches = ['model.sr_decoder.*', 'model.feature_transform.*', 'model.loss_sr.*',
                'model.loss_fa.*']
    assert drift(flats['dsrl'], flats['deeplabv3plus-half-sssr'], branches) == []
    assert flats['deeplabv3plus-half-sssr']['model.downsample_factor'] == 0.5
    assert not any(k.startswith('model.sr_decoder') for k in flats['deeplabv3plus-half-sssr'])


def test_dsrl_and_its_half_baseline_predict_alike_without_the_branches():
    """Built from the synthetic suite with the same weights, DSRL with its training branches
    dropped and deeplabv3plus-half-sssr give the same logits: the same network on the same input."""
    import torch
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    configs = _suite_configs('synthetic')
    models = {}
    for name in ('dsrl', 'deeplabv3plus-half-sssr'):
        model_cfg = copy.deepcopy(configs[name].model)
        model_cfg.pop('pretrained', None)
        models[name] = revert_sync_batchnorm(MODELS.build(model_cfg)).eval()
    dsrl, half = models['dsrl'], models['deeplabv3plus-half-sssr']
    assert dsrl.with_sisr and dsrl.with_fa and not half.with_sisr
    missing, unexpected = half.load_state_dict(dsrl.state_dict(), strict=False)
    assert not missing
    assert unexpected and all(k.startswith(('sr_decoder.', 'feature_transform.'))
                              for k in unexpected)
    image = torch.randn(1, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(half(image, mode='tensor'), dsrl(image, mode='tensor'))
        assert half(image, mode='tensor').shape[-2:] == (64, 128)


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
    80k SGD lr 0.01, 2 images per GPU, single-scale whole-image test."""
    cfg = Config.fromfile(osp.join(BENCH, 'spnet.py'))
    assert cfg.model.backbone.depth == 50 and cfg.model.backbone.dilations == (1, 1, 2, 4)
    assert cfg.model.pretrained == 'open-mmlab://resnet50_v1c'
    assert cfg.model.backbone.multi_grid is None
    assert [t for t in cfg.train_pipeline if 'crop_size' in t][0]['crop_size'] == (512, 1024)
    assert cfg.train_cfg.max_iters == 80000 and cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.model.test_cfg == dict(mode='whole')


@functools.lru_cache(maxsize=None)
def _deeplabv2() -> dict:
    return Config.fromfile(osp.join(BENCH, 'deeplabv2.py')).to_dict()


@pytest.mark.parametrize('key,value', [
    ('optim_wrapper.optimizer.lr', 0.02),
    ('train_pipeline.3.crop_size', (768, 768)),
    ('model.test_cfg.mode', 'slide'),
    ('model.backbone.contract_dilation', False),
    ('model.auxiliary_head.loss_decode.loss_weight', 1.0),
])
def test_drift_is_caught(key, value):
    """A benchmark config that changes a protocol key fails the comparison, naming the key."""
    cfg = Config(copy.deepcopy(_deeplabv2()))
    cfg.merge_from_dict({key: value}, allow_list_keys=True)
    baseline = _flat_files()[BASELINE]
    found = drift(_flatten(cfg.to_dict()), baseline, ALLOWED['deeplabv2'])
    assert found and all(k == key or k.startswith(key + '.') for k in found), found
