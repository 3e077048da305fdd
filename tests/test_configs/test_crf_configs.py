# Copyright (c) mmaffseg contributors. All rights reserved.
"""Every config that runs the dense CRF uses its own model's published CRF settings.

The expected numbers are the papers' (see ``../shared/docs/methods.md``), written here as
(w1, theta_alpha, theta_beta, w2, theta_gamma) = bilateral weight, bilateral spatial std,
bilateral colour std, Gaussian weight, Gaussian spatial std, all with 10 mean-field iterations:

- DeepLab v1 LargeFOV (ICLR 2015): (4, 121, 5, 3, 3)
- DeepLab v2 ResNet-101 (TPAMI 2018): (4, 67, 3, 3, 1); VGG-16: (4, 65, 3, 2, 2)
- PSA (CVPR 2018, official ``crf_inference``): (10, 80, 13, 3, 3)

The values are read through :class:`~mmaffseg.postprocessing.DenseCRF` built from each config's
``crf`` dict exactly as the runtime builds it, so a changed default counts too.
"""
import ast
import functools
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmaffseg.postprocessing import DenseCRF

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(REPO, 'configs')

DEEPLABV1_LARGEFOV = (4, 121, 5, 3, 3)
DEEPLABV2_R101 = (4, 67, 3, 3, 1)
DEEPLABV2_VGG16 = (4, 65, 3, 2, 2)
PSA = (10, 80, 13, 3, 3)

# Every CRF config, with the settings of its model. The R-18 DeepLab v2 quick start uses the
# ResNet-101 values (same DeepLab v2 ResNet model; no ResNet-18 values were published).
EXPECTED = {
    'deeplabv1-crf_vgg16-largefov_4xb2-80k_cityscapes-512x1024.py': DEEPLABV1_LARGEFOV,
    'deeplabv1-crf_vgg16-largefov_4xb4-20k_voc12aug-512x512.py': DEEPLABV1_LARGEFOV,
    'deeplabv1-crf_vgg16-slim-largefov_quickstart_synthetic-128x256.py': DEEPLABV1_LARGEFOV,
    'deeplabv2-crf_r101-d8_4xb2-80k_cityscapes-512x1024.py': DEEPLABV2_R101,
    'deeplabv2-crf_r101-d8_4xb4-20k_voc12aug-512x512.py': DEEPLABV2_R101,
    'deeplabv2-crf_r18-d8_quickstart_synthetic-128x256.py': DEEPLABV2_R101,
    'psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py': PSA,
    'psa-pseudo-labels_r50-d8_voc12aug.py': PSA,
    'psa-pseudo-labels_resnet38-d8_voc12-train.py': PSA,
    'psa-pseudo-labels_resnet38-d8_voc12aug.py': PSA,
    # configs/benchmark: the protocol's CRF variants use DeepLab v2 ResNet-101's settings
    'deeplabv2-crf.py': DEEPLABV2_R101,
    'deeplabv3plus-crf.py': DEEPLABV2_R101,
}
# the model / loop types that run DenseCRF, as they appear in a config's text
CRF_MARKERS = ('CRFRefineSegmentor', 'PseudoLabelLoop', 'DenseCRF')


@functools.lru_cache(maxsize=None)
def _parse(path: str) -> Config:
    return Config.fromfile(path)


def _local_bases(path: str):
    """The repository configs a config file inherits (its ``_base_``; mmseg:: bases skipped)."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], 'id', None) == '_base_'):
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else bases
            return [osp.normpath(osp.join(osp.dirname(path), b)) for b in bases
                    if '::' not in b]
    return []


@functools.lru_cache(maxsize=None)
def _mentions_crf(path: str) -> bool:
    """Whether the config or one of the repository configs it inherits names a CRF runner
    (text only: cheap enough to scan every config of the repository)."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if any(marker in text for marker in CRF_MARKERS):
        return True
    return any(_mentions_crf(base) for base in _local_bases(path))


def _crf_dict(cfg: Config):
    """The ``crf`` arguments the runtime passes to DenseCRF, or None if the config has no CRF."""
    model = cfg.get('model') or {}  # a benchmark suite file has no model
    if model.get('type') == 'CRFRefineSegmentor':
        return dict(model.get('crf') or {})
    test_cfg = cfg.get('test_cfg') or {}
    if test_cfg.get('type') == 'PseudoLabelLoop':
        return dict(test_cfg.get('crf') or {})
    return None


def _published(crf: DenseCRF):
    return (crf.bilateral_compat, crf.bilateral_sxy, crf.bilateral_srgb, crf.gaussian_compat,
            crf.gaussian_sxy)


def _candidates():
    """Configs of the repository that name a CRF runner themselves or through their bases."""
    paths = glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
    paths += glob.glob(osp.join(REPO, 'projects', '*', 'configs', '**', '*.py'), recursive=True)
    return {
        osp.basename(p): p
        for p in paths if osp.sep + '_base_' + osp.sep not in p and _mentions_crf(p)
    }


def test_every_crf_config_is_pinned():
    """A new CRF config (or a config losing its CRF) must be added here with its values."""
    candidates = _candidates()
    found = {name for name, path in candidates.items() if _crf_dict(_parse(path)) is not None}
    assert found == set(EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_crf_config_uses_its_models_published_settings(name):
    crf = DenseCRF(**_crf_dict(_parse(_candidates()[name])))
    assert _published(crf) == EXPECTED[name]
    assert crf.iterations == 10
    assert crf.scale_factor == 1


def test_base_crf_settings_are_the_published_ones():
    v1 = Config.fromfile(osp.join(CONFIG_ROOT, '_base_', 'models', 'deeplab_crf.py'))
    v2 = Config.fromfile(osp.join(CONFIG_ROOT, '_base_', 'models', 'deeplabv2_crf.py'))
    for cfg, expected in ((v1.deeplab_crf, DEEPLABV1_LARGEFOV),
                          (v2.deeplabv2_r101_crf, DEEPLABV2_R101),
                          (v2.deeplabv2_vgg16_crf, DEEPLABV2_VGG16)):
        crf = DenseCRF(**cfg)
        assert _published(crf) == expected
        assert crf.iterations == 10 and crf.scale_factor == 1
