# Copyright (c) mmaffseg contributors. All rights reserved.
"""PSA's hyper-parameters are defined once (mmaffseg/ops/psa_defaults.py): the pseudo-label
loop, the stage function and the lower-level functions take their defaults from it, and it
holds the official recipe's numbers.

They used to be written separately into ``PseudoLabelLoop.__init__`` and ``stage_labels`` (and
``random_walk_cams``, ``affinity_label_from_cams``, ``multi_scale_cam``), free to drift.
"""
import inspect

from mmaffseg.postprocessing import DenseCRF
from mmaffseg.wsss import (
    PseudoLabelLoop,
    affinity_label_from_cams,
    multi_scale_cam,
    random_walk_cams,
    stage_labels,
)
from mmaffseg.ops.psa_defaults import PSA_DEFAULTS, psa_crf_args

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
            (random_walk_cams, dict(alpha='rw_alpha', beta='rw_beta', logt='rw_logt',
                                    radius='radius', stride='stride')),
            (affinity_label_from_cams, dict(low_alpha='low_alpha', high_alpha='high_alpha')),
            (multi_scale_cam, dict(scales='cam_scales', flip='cam_flip'))):
        defaults = _defaults(function)
        for argument, setting in names.items():
            assert defaults[argument] is getattr(PSA_DEFAULTS, setting), (function, argument)
    # and that definition is the official recipe
    assert {k: getattr(PSA_DEFAULTS, k) for k in OFFICIAL} == OFFICIAL
    assert dict(PSA_DEFAULTS.crf) == OFFICIAL_CRF
    # the loop's CRF (crf=None / {} / a few settings) keeps PSA's kernels
    for given in (None, {}, dict(workers=2)):
        crf = DenseCRF(**psa_crf_args(given))
        assert {k: getattr(crf, k) for k in OFFICIAL_CRF} == OFFICIAL_CRF
    assert DenseCRF(**psa_crf_args(dict(bilateral_srgb=5))).bilateral_srgb == 5
    assert 'psa_crf_args(crf)' in inspect.getsource(PseudoLabelLoop.__init__)
