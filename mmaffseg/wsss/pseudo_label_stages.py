# Copyright (c) mmaffseg contributors. All rights reserved.
"""PSA's pseudo-label stages for one image, on tensors: CAMs, affinities -> {stage: label}.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

===================  ==========================================================================
stage                label map (0 background, ``k + 1`` image-level class ``k``)
===================  ==========================================================================
``cam``              argmax of ``[bg_score, CAMs]`` (Table 1 "CAM")
``affinity_labels``  AffinityNet training labels from the dCRF of the low / high background
                     stacks: 0 confident background, ``k + 1`` class k, ``ignore_index`` unknown
``rw``               argmax of the random walk of ``[(1 - max CAM) ** rw_alpha, CAMs]``
``rw_crf``           the walked scores (normalised over the classes) refined by the dense CRF
===================  ==========================================================================

Only the image's present classes are carried (``multi_scale_cam`` returns the CAMs of the
classes of its image-level labels), so the walk moves background + present classes, not every
class of the dataset: absent classes would walk zeros and never win the argmax.

:func:`stage_labels` makes the labels that need no CRF and the CRF unaries, and
:func:`crf_stage_labels` the labels from the refined unaries, so that a runner can batch the
CRFs of several images (:class:`~mmaffseg.postprocessing.DenseCRF`'s ``batch``);
:func:`pseudo_label_stages` chains the two for one image. Nothing here reads or writes files
(the runner's files are :mod:`mmaffseg.wsss.label_store`).
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from mmaffseg.ops.psa_defaults import PSA_DEFAULTS
from mmaffseg.ops.psa_stages import WALK_STAGES

from ..models.utils.preprocessing import to_rgb
from .affinity_labels import affinity_label_from_crf
from .cam import add_background, multi_scale_cam, stack_to_label
from .crf_pool import submit_batch_crf
from .random_walk import random_walk_cams


def check_finite(x: Tensor, what: str, hint: str) -> None:
    """Raise a ValueError naming ``what`` when ``x`` holds NaN or inf values."""
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = x.numel() - int(finite.sum())
        raise ValueError(f'{what} contain {bad} NaN/inf value(s) of {x.numel()}; {hint}')


def preprocess_sample(model, data: dict) -> Tensor:
    """The model's own normalisation of one packed sample -> ``(1, 3, H, W)``."""
    batch = model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]), False)
    return batch['inputs']


def pil_scaled_inputs(model, data: dict) -> Optional[Callable[[Tuple[int, int]], Tensor]]:
    """PSA's multi-scale CAM inputs: the packed uint8 image resized by PIL, then normalised.

    The reference (``voc12/data.VOC12ClsDatasetMSF``) resizes the decoded image with
    ``PIL.Image.CUBIC`` and normalises after; this returns ``(h, w) -> (1, 3, h, w)`` doing the
    same with ``model``'s data preprocessor, for
    :func:`~mmaffseg.wsss.cam.multi_scale_cam`'s ``scaled_input``. PIL filters each channel on
    its own, so the channel order of the packed image does not matter.

    Args:
        model: The CAM classifier (its ``data_preprocessor`` normalises).
        data (dict): The packed sample (``inputs`` ``(3, H, W)``, ``data_samples``).

    Returns:
        Callable | None: The resizer, or None when ``inputs`` is not a 3-channel uint8 image
        (the caller then resizes the normalised image with torch).
    """
    inputs = data['inputs']
    if inputs.dtype != torch.uint8 or inputs.dim() != 3 or inputs.shape[0] != 3:
        return None
    image = Image.fromarray(np.ascontiguousarray(inputs.permute(1, 2, 0).cpu().numpy()), 'RGB')

    def scaled(size: Tuple[int, int]) -> Tensor:
        resized = np.asarray(image.resize((size[1], size[0]), Image.BICUBIC))
        packed = torch.from_numpy(resized.copy()).permute(2, 0, 1).contiguous()
        return preprocess_sample(model, dict(data, inputs=packed))

    return scaled


def packed_image_rgb(model, inputs: Tensor) -> np.ndarray:
    """The packed image ``(3, H, W)`` (before ``model``'s data preprocessor) as an
    ``(H, W, 3)`` uint8 RGB array, for the dense CRF's pairwise term.

    The channel order follows :func:`~mmaffseg.models.utils.preprocessing.to_rgb` with
    ``preprocessed=False`` (mmcv loads BGR; flipped unless the preprocessor's conversion is off).
    """
    img = to_rgb(inputs, model.data_preprocessor, preprocessed=False)
    img = img.permute(1, 2, 0).cpu().numpy()
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(img)


def check_cam_size(size: Sequence[int], scales: Sequence[float]) -> None:
    """Raise a ValueError when an image of ``size`` (H, W) vanishes at the smallest CAM scale."""
    height, width = size
    scale = min(scales)
    if round(min(height, width) * scale) < 1:
        raise ValueError(
            f'the image is {height}x{width} pixels, too small for the CAM scale {scale} '
            f'(it would be resized to nothing); the CAMs need images of at least '
            f'{math.floor(0.5 / scale) + 1} pixels a side (or larger cam_scales)')


def compute_cams(cam_model, img_norm: Tensor, labels: Tensor, scales: Sequence[float],
                 flip: bool, checkpoint_hint: str = '',
                 scaled_input: Optional[Callable[[Tuple[int, int]], Tensor]] = None
                 ) -> Tuple[Tensor, Tensor]:
    """Multi-scale CAMs of the present classes, rounded to float16.

    The rounding makes CAMs read back from a float16 cache give the same labels as fresh ones.

    Args:
        cam_model: The CAM classifier (``forward_cam``).
        img_norm (Tensor): ``(1, 3, H, W)`` normalised image.
        labels (Tensor): ``(C,)`` multi-hot image-level labels.
        scales (Sequence[float]): CAM inference scales.
        flip (bool): Add flipped images.
        checkpoint_hint (str): The checkpoint, named when the CAMs are not finite.
        scaled_input (Callable, optional): The image at another scale (see
            :func:`pil_scaled_inputs`); defaults to torch's bicubic resize of ``img_norm``.

    Returns:
        tuple[Tensor, Tensor]: float16 ``(K, H, W)`` CAMs and ``(K,)`` class ids.
    """
    cams, class_ids = multi_scale_cam(cam_model.forward_cam, img_norm,
                                      labels.to(img_norm.device), scales=scales, flip=flip,
                                      scaled_input=scaled_input)
    cams = cams.half()
    check_finite(cams, 'the CAMs', 'check the CAM classifier checkpoint (--cam-checkpoint '
                 f'{checkpoint_hint}) for NaN/inf weights')
    return cams, class_ids


def stage_labels(cams: Tensor,
                 class_ids: Tensor,
                 stages: Sequence[str],
                 aff: Optional[Tensor] = None,
                 radius: int = PSA_DEFAULTS.radius,
                 stride: int = PSA_DEFAULTS.stride,
                 cam_bg_score: float = PSA_DEFAULTS.cam_bg_score,
                 low_alpha: float = PSA_DEFAULTS.low_alpha,
                 high_alpha: float = PSA_DEFAULTS.high_alpha,
                 rw_alpha: float = PSA_DEFAULTS.rw_alpha,
                 rw_beta: float = PSA_DEFAULTS.rw_beta,
                 rw_logt: int = PSA_DEFAULTS.rw_logt,
                 aff_hint: str = '') -> Tuple[Dict[str, Tensor], Dict[str, np.ndarray]]:
    """The labels of ``stages`` that need no CRF, and the unaries of those that do.

    The defaults of ``radius`` ... ``rw_logt`` are PSA's,
    :data:`~mmaffseg.ops.psa_defaults.PSA_DEFAULTS` (shared with
    :class:`~mmaffseg.wsss.PseudoLabelLoop`).

    Args:
        cams (Tensor): ``(K, H, W)`` CAMs in [0, 1] of the present classes.
        class_ids (Tensor): ``(K,)`` their 0-based classes.
        stages (Sequence[str]): Stages to make (``cam``, ``affinity_labels``, ``rw``,
            ``rw_crf``).
        aff (Tensor, optional): ``(1, K', P)`` AffinityNet affinities; needed by ``rw`` and
            ``rw_crf``.
        radius (int): The affinities' pair radius.
        stride (int): The affinities' grid stride.
        cam_bg_score (float): Constant background score of ``cam``.
        low_alpha (float): Background power of the weak-background stack.
        high_alpha (float): Background power of the strong-background stack.
        rw_alpha (float): Background power of the walked stack.
        rw_beta (float): Affinity power of the walk.
        rw_logt (int): log2 of the number of walk steps.
        aff_hint (str): The AffinityNet checkpoint, named when the affinities are not finite.

    Returns:
        tuple[dict, dict]: ``{stage: (H, W) int64 label}`` for ``cam`` / ``rw``, and the CRF
        unaries ``{name: (C, H, W) float array}`` (``aff_low``, ``aff_high`` for
        ``affinity_labels``; ``rw_crf``) for :func:`crf_stage_labels`.
    """
    labels: Dict[str, Tensor] = {}
    unaries: Dict[str, np.ndarray] = {}
    if 'cam' in stages:
        stack = torch.cat([torch.full_like(cams[:1], cam_bg_score), cams])
        labels['cam'] = stack_to_label(stack.argmax(0), class_ids)
    if 'affinity_labels' in stages:
        for name, alpha in (('aff_low', low_alpha), ('aff_high', high_alpha)):
            unaries[name] = add_background(cams, alpha).cpu().numpy()
    if set(WALK_STAGES) & set(stages):
        if aff is None:
            raise ValueError(f'stages {tuple(stages)} walk the CAMs: pass the affinities')
        check_finite(aff, 'the affinities', 'check the AffinityNet checkpoint '
                     f'(--aff-checkpoint {aff_hint}) for NaN/inf weights')
        scores = random_walk_cams(cams[None].to(aff.device), aff, alpha=rw_alpha, beta=rw_beta,
                                  logt=rw_logt, radius=radius, stride=stride)[0]
        check_finite(scores, 'the random-walk scores', 'the walk overflowed: lower '
                     f'rw_beta ({rw_beta}) or rw_logt ({rw_logt})')
        if 'rw' in stages:
            labels['rw'] = stack_to_label(scores.argmax(0), class_ids)
        if 'rw_crf' in stages:  # CRF unary from the scores normalised over classes
            probs = scores / scores.sum(0, keepdim=True).clamp_min(1e-5)
            unaries['rw_crf'] = probs.cpu().numpy()
    return labels, unaries


def crf_stage_labels(refined: Dict[str, np.ndarray], class_ids: Tensor,
                     ignore_index: int = 255) -> Dict[str, Tensor]:
    """The labels of the CRF stages from the refined unaries of :func:`stage_labels`.

    Args:
        refined (dict): ``{name: (C, H, W) probabilities}`` after the dense CRF.
        class_ids (Tensor): ``(K,)`` the CAMs' classes.
        ignore_index (int): Label of unknown affinity-label pixels. Default: 255.

    Returns:
        dict: ``{stage: (H, W) label}`` for ``affinity_labels`` / ``rw_crf``.
    """
    labels = {}
    class_ids = class_ids.cpu()
    if 'aff_low' in refined:
        labels['affinity_labels'] = affinity_label_from_crf(
            refined['aff_low'], refined['aff_high'], class_ids, ignore_index)
    if 'rw_crf' in refined:
        index = torch.from_numpy(refined['rw_crf'].argmax(0))
        labels['rw_crf'] = stack_to_label(index, class_ids)
    return labels


def batch_crf(crf, unaries: List[Dict[str, np.ndarray]], images: List[np.ndarray],
              fallback: bool = True) -> List[Optional[Dict[str, np.ndarray]]]:
    """The dense CRFs of several images' unaries in one :meth:`DenseCRF.batch` call (one pool;
    :func:`~mmaffseg.wsss.crf_pool.submit_batch_crf` without waiting).

    Args:
        crf (DenseCRF): The dense CRF.
        unaries (list[dict]): Per image, ``{name: (C, H, W) probabilities}`` (may be empty).
        images (list[np.ndarray]): Per image, its ``(H, W, 3)`` uint8 RGB array.
        fallback (bool): On an error, return None for every image (the caller then refines
            them one by one to find the bad one) instead of raising. Default: True.

    Returns:
        list: Per image, ``{name: refined probabilities}``, or None after an error.
    """
    return submit_batch_crf(crf, unaries, images).result(fallback)


def pseudo_label_stages(cams: Tensor,
                        class_ids: Tensor,
                        stages: Sequence[str],
                        aff: Optional[Tensor] = None,
                        img_rgb: Optional[np.ndarray] = None,
                        crf=None,
                        ignore_index: int = 255,
                        **kwargs) -> Dict[str, Tensor]:
    """Every requested stage's label map of one image: :func:`stage_labels`, the dense CRF of
    its unaries, :func:`crf_stage_labels`.

    Args:
        cams, class_ids, stages, aff: As :func:`stage_labels`.
        img_rgb (np.ndarray, optional): ``(H, W, 3)`` uint8 RGB image; needed by the CRF
            stages (``affinity_labels``, ``rw_crf``).
        crf (DenseCRF, optional): The dense CRF (anything with ``batch(probs, images)``);
            needed by the CRF stages.
        ignore_index (int): Label of unknown affinity-label pixels. Default: 255.
        **kwargs: The other arguments of :func:`stage_labels`.

    Returns:
        dict: ``{stage: (H, W) label}`` for every stage of ``stages``.
    """
    labels, unaries = stage_labels(cams, class_ids, stages, aff, **kwargs)
    if unaries:
        if crf is None or img_rgb is None:
            raise ValueError(f'stages {tuple(unaries)} need the dense CRF: pass crf and img_rgb')
        refined = batch_crf(crf, [unaries], [img_rgb], fallback=False)[0]
        labels.update(crf_stage_labels(refined, class_ids, ignore_index))
    return labels
