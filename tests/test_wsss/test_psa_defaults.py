# Copyright (c) mmaffseg contributors. All rights reserved.
"""PSA's hyper-parameters are defined once (mmaffseg/ops/psa_defaults.py): every layer's
defaults read them (no signature of the pipeline writes a number of its own), they are the
official recipe's, and a config value travels one path to the call that uses it.

They used to be written separately into ``PseudoLabelLoop.__init__`` and ``stage_labels``, then
as literals into ops/, the AffinityNet head, the walk and ``DenseCRF``, free to drift.
"""
import ast
import importlib
import inspect
import os.path as osp

import pytest

from mmaffseg.models.decode_heads import AffinityHead
from mmaffseg.ops import affinity_pair_labels, pairwise_affinity
from mmaffseg.ops.psa_defaults import PSA_CRF, PSA_DEFAULTS
from mmaffseg.postprocessing import DenseCRF
from mmaffseg.wsss import (
    PseudoLabelLoop,
    affinity_label_from_cams,
    multi_scale_cam,
    random_walk,
    random_walk_cams,
    stage_labels,
)

PACKAGE = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'mmaffseg')

# The official recipe, written out from /work/shared/docs/methods.md, section "PSA / AffinityNet
# weakly supervised pipeline (Ahn & Kwak CVPR 2018; ref jiwoon-ahn/psa)":
#   "multi-scale (1, 0.5, 1.5, 2) + flip"
#   "alpha = 4 (low, background amplified), 24 in the paper / 32 in the code (high), 16 for the
#    walk"
#   "dCRF ...: Gaussian sxy 3 compat 3; bilateral sxy 80, srgb 13, compat 10; 10 iterations"
#   "Pairs: within radius 5 on the stride-8 grid"
#   "T = W^beta (elementwise, beta = 8) ... result = CAM T^t with t = 256" (log2 t = 8)
# methods.md does not give the constant background score of the "CAM" labels; it is 0.2 in
# the reference's infer_cls.py (--out_cam_pred: bg_score = 0.2 everywhere, then argmax).
OFFICIAL = dict(cam_scales=(1.0, 0.5, 1.5, 2.0), cam_flip=True, cam_bg_score=0.2,
                low_alpha=4, high_alpha=32, rw_alpha=16, rw_beta=8, rw_logt=8, radius=5,
                stride=8)
OFFICIAL_CRF = dict(iterations=10, gaussian_sxy=3, gaussian_compat=3, bilateral_sxy=80,
                    bilateral_srgb=13, bilateral_compat=10)
WALK = dict(alpha='rw_alpha', beta='rw_beta', logt='rw_logt', radius='radius', stride='stride')

#: The modules of PSA's pipeline, below and above the table.
PSA_MODULES = ('ops/affinity_pairs.py', 'models/decode_heads/affinity_head.py',
               'models/segmentors/affinity_net.py', 'postprocessing/dense_crf.py', 'wsss/*.py')
#: Parameter names that hold one of PSA's settings in those modules.
SETTING_PARAMETERS = {*OFFICIAL, *OFFICIAL_CRF, *WALK, 'label_stride', 'scales', 'flip',
                      'bg_score'}


def _defaults(function) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_psa_defaults_are_shared_and_official():
    loop = _defaults(PseudoLabelLoop.__init__)
    stages = _defaults(stage_labels)
    shared = ('cam_bg_score', 'low_alpha', 'high_alpha', 'rw_alpha', 'rw_beta', 'rw_logt')
    assert {k: loop[k] for k in shared} == {k: stages[k] for k in shared}
    # every default, of the loop and of the functions it calls, is the one definition
    for function, names in (
            (PseudoLabelLoop.__init__, dict(cam_scales='cam_scales', cam_flip='cam_flip',
                                            **{k: k for k in shared})),
            (stage_labels, dict(radius='radius', stride='stride', **{k: k for k in shared})),
            (random_walk_cams, WALK),
            (random_walk, dict(radius='radius', beta='rw_beta', logt='rw_logt')),
            (pairwise_affinity, dict(radius='radius')),
            (affinity_pair_labels, dict(radius='radius')),
            (AffinityHead.__init__, dict(radius='radius', label_stride='stride')),
            (affinity_label_from_cams, dict(low_alpha='low_alpha', high_alpha='high_alpha')),
            (multi_scale_cam, dict(scales='cam_scales', flip='cam_flip'))):
        defaults = _defaults(function)
        for argument, setting in names.items():
            assert defaults[argument] is getattr(PSA_DEFAULTS, setting), (function, argument)
    crf_defaults = _defaults(DenseCRF.__init__)
    assert all(crf_defaults[k] is PSA_CRF[k] for k in PSA_CRF)
    # and that definition is the official recipe
    assert {k: getattr(PSA_DEFAULTS, k) for k in OFFICIAL} == OFFICIAL
    assert dict(PSA_DEFAULTS.crf) == OFFICIAL_CRF
    # a CRF given a few settings (the configs' crf=dict(workers=...)) keeps PSA's kernels
    for given in ({}, dict(workers=2)):
        crf = DenseCRF(**given)
        assert {k: getattr(crf, k) for k in OFFICIAL_CRF} == OFFICIAL_CRF


def _literal_defaults(path: str) -> list:
    """``file:line name=value`` of every PSA setting parameter with a literal default."""
    found = []
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        args = node.args
        positional = args.posonlyargs + args.args
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for arg, default in pairs:
            if arg.arg in SETTING_PARAMETERS and not any(
                    isinstance(n, ast.Name) and n.id in ('PSA_DEFAULTS', 'PSA_CRF')
                    for n in ast.walk(default)):
                found.append(f'{osp.relpath(path, PACKAGE)}:{default.lineno} '
                             f'{arg.arg}={ast.unparse(default)}')
    return found


def test_no_literal_psa_default_below_the_table():
    """A PSA setting's parameter in the pipeline's modules (ops, the AffinityNet, the dense
    CRF, wsss) has no default or reads it from PSA_DEFAULTS / PSA_CRF: no number of its own."""
    import glob
    paths = sorted({p for pattern in PSA_MODULES for p in glob.glob(osp.join(PACKAGE, pattern))})
    assert len(paths) > 10 and osp.join(PACKAGE, 'ops', 'affinity_pairs.py') in paths
    found = [f for path in paths for f in _literal_defaults(path)]
    assert found == [], 'literal PSA defaults (read them from mmaffseg.ops.psa_defaults): ' + \
        ', '.join(found)


def test_literal_default_check_finds_a_literal(tmp_path):
    """The check above does flag a literal (and an expression of literals), and only those."""
    source = tmp_path / 'walk.py'
    source.write_text('def walk(x, radius: int = 5, beta=2 ** 3, *, logt=PSA_DEFAULTS.rw_logt,\n'
                      '         kernel=None, iterations=PSA_CRF["iterations"]):\n    pass\n')
    assert [f.split(' ', 1)[1] for f in _literal_defaults(str(source))] == \
        ['radius=5', 'beta=2 ** 3']


# ---------------------------------------------------- one path from the config to the use
@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    from test_wsss.test_pseudo_label_loop import make_psa_checkpoints
    return make_psa_checkpoints(tmp_path_factory.mktemp('psa_defaults_ckpt'))


def _walk_spy(monkeypatch) -> list:
    """Record the settings of every walk: those ``random_walk_cams`` is called with, and the
    radius / beta its transition weights are built with."""
    from mmaffseg.wsss import pseudo_label_stages
    walk_module = importlib.import_module('mmaffseg.wsss.random_walk')  # not the function
    calls = []

    def spy_cams(cams, aff, **kwargs):
        calls.append(('random_walk_cams', kwargs))
        return random_walk_cams(cams, aff, **kwargs)

    def spy(function):
        def wrapper(aff, size, radius, beta):
            calls.append((function.__name__, dict(radius=radius, beta=beta)))
            return function(aff, size, radius, beta)
        return wrapper

    monkeypatch.setattr(pseudo_label_stages, 'random_walk_cams', spy_cams)
    for name in ('pair_weights', 'transition_rows'):
        monkeypatch.setattr(walk_module, name, spy(getattr(walk_module, name)))
    return calls


def test_config_values_reach_the_walk_and_the_crf(tiny_synthetic_root, checkpoints, tmp_path,
                                                  monkeypatch):
    """``test_cfg.rw_alpha / rw_beta / rw_logt`` and the AffinityNet's radius / stride are the
    values the walk runs with (down to the transition weights); ``test_cfg.crf`` is the CRF
    the loop runs, PSA's kernels where the config is silent."""
    from test_wsss.test_pseudo_label_loop import _runner
    calls = _walk_spy(monkeypatch)
    runner = _runner(tiny_synthetic_root, checkpoints, tmp_path / 'out', stages=['rw'],
                     **{'test_cfg.rw_alpha': 5.0, 'test_cfg.rw_beta': 3.0,
                        'test_cfg.rw_logt': 2, 'test_cfg.crf.bilateral_srgb': 7.0,
                        'test_dataloader.dataset.indices': [0]})
    runner.test()
    loop = runner.test_loop
    assert loop.failures == [] and loop.processed == [0]
    walks = [kwargs for name, kwargs in calls if name == 'random_walk_cams']
    assert walks == [dict(alpha=5.0, beta=3.0, logt=2, radius=5, stride=4)]  # demo AffinityNet
    weights = [kwargs for name, kwargs in calls if name != 'random_walk_cams']
    assert weights and all(w == dict(radius=5, beta=3.0) for w in weights)
    assert loop.crf.bilateral_srgb == 7.0
    assert {k: getattr(loop.crf, k) for k in OFFICIAL_CRF if k != 'bilateral_srgb'} == \
        {k: v for k, v in OFFICIAL_CRF.items() if k != 'bilateral_srgb'}
    assert loop.crf.workers == 0


def test_selection_walks_each_candidate_with_the_configs_settings(tiny_synthetic_root,
                                                                  checkpoints, tmp_path,
                                                                  monkeypatch):
    """The walk sweep goes down the same path: each candidate's alpha / beta, the config's
    ``rw_logt`` and the AffinityNet's radius / stride reach the walk of every selection image."""
    from test_wsss.test_param_selection import _select
    calls = _walk_spy(monkeypatch)
    result = _select(tiny_synthetic_root, checkpoints, tmp_path / 'out', 'walk', '--rw-alphas',
                     '3', '--rw-betas', '2', '5', '--select-on', 'rw')  # rw_logt=3
    assert [row['rw_beta'] for row in result['candidates']] == [2.0, 5.0]
    walks = [kwargs for name, kwargs in calls if name == 'random_walk_cams']
    assert walks == [dict(alpha=3.0, beta=beta, logt=3, radius=5, stride=4)
                     for _ in range(3) for beta in (2.0, 5.0)]  # 3 images, 2 candidates
    weights = [kwargs for name, kwargs in calls if name != 'random_walk_cams']
    assert [w['beta'] for w in weights] == [2.0, 5.0] * 3 and {w['radius'] for w in weights} == {5}
