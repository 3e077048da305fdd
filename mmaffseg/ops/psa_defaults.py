# Copyright (c) mmaffseg contributors. All rights reserved.
"""PSA's hyper-parameters, written once: every default of every layer reads them from here.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018 (official code: jiwoon-ahn/psa).

The values (in :class:`PSADefaults` and :data:`PSA_CRF` below, nowhere else) are the official
recipe's; where the paper and the released code differ, the code's (``high_alpha``: 24 in the
paper, 32 in the code):

==================  ==========================================================================
setting             meaning
==================  ==========================================================================
``cam_scales``      CAM inference scales
``cam_flip``        add the horizontal flips to the CAM inference
``cam_bg_score``    constant background score of the ``cam`` labels
``low_alpha``       background power of the weak-background affinity map
``high_alpha``      background power of the strong-background affinity map
``rw_alpha``        background power of the walked CAM stack
``rw_beta``         affinity power of the walk
``rw_logt``         log2 of the number of walk steps
``radius``          affinity pair radius, on the feature grid
``stride``          feature stride of the affinities
``crf``             the dense CRF of the affinity labels and of ``rw_crf`` (:data:`PSA_CRF`)
==================  ==========================================================================

The table sits in this leaf package so that every layer can read it: the pair functions of
:mod:`mmaffseg.ops.affinity_pairs` (``radius``), :class:`~mmaffseg.postprocessing.DenseCRF`
(:data:`PSA_CRF`), :class:`~mmaffseg.models.decode_heads.AffinityHead` (``radius``,
``stride``) and the functions and loops of :mod:`mmaffseg.wsss`. None of them writes a number
of its own, so a config value travels one path to its use: e.g. ``test_cfg.rw_beta`` ->
:class:`~mmaffseg.wsss.PseudoLabelLoop` (``stage_settings``) ->
:class:`~mmaffseg.wsss.image_step.ImageStep` -> :func:`~mmaffseg.wsss.stage_labels` ->
:func:`~mmaffseg.wsss.random_walk_cams` -> :func:`~mmaffseg.wsss.random_walk`, and
``test_cfg.crf`` -> ``DenseCRF(**crf)``; the walk's ``radius`` and ``stride`` come from the
AffinityNet's head (read by the image step).
"""
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Tuple

#: The dense CRF of PSA: the defaults of :class:`~mmaffseg.postprocessing.DenseCRF`.
PSA_CRF: Mapping[str, float] = MappingProxyType(
    dict(iterations=10, gaussian_sxy=3.0, gaussian_compat=3.0, bilateral_sxy=80.0,
         bilateral_srgb=13.0, bilateral_compat=10.0))


@dataclass(frozen=True)
class PSADefaults:
    """PSA's hyper-parameters (the module's table); use the instance :data:`PSA_DEFAULTS`."""

    cam_scales: Tuple[float, ...] = (1.0, 0.5, 1.5, 2.0)
    cam_flip: bool = True
    cam_bg_score: float = 0.2
    low_alpha: float = 4.0
    high_alpha: float = 32.0
    rw_alpha: float = 16.0
    rw_beta: float = 8.0
    rw_logt: int = 8
    radius: int = 5
    stride: int = 8
    crf: Mapping[str, float] = field(default_factory=lambda: PSA_CRF)  # read-only


#: The one instance every default reads.
PSA_DEFAULTS = PSADefaults()
