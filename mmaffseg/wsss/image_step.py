# Copyright (c) mmaffseg contributors. All rights reserved.
"""One image through PSA's networks, the step both PSA loops share: sample -> CAMs -> walk.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

:class:`~mmaffseg.wsss.PseudoLabelLoop` (which writes each stage's labels) and
:class:`~mmaffseg.wsss.PSAParamSelectionLoop` (which scores candidate settings against the
masks) run every image through an :class:`ImageStep`:

* :meth:`ImageStep.load` reads the dataset sample: the packed image, its image-level labels and
  its mask (when the pipeline loads them);
* :meth:`ImageStep.cams` checks the labels and the size and computes the CAMs of the present
  classes (the loop's CAM function, which keeps the cache) and the RGB image of the CRF;
* :meth:`ImageStep.affinities` predicts the AffinityNet's affinities, once per image, with the
  grid they lie on (the head's ``radius`` and ``label_stride``: read here and nowhere else);
* :meth:`ImageStep.stage_labels` makes the labels of some stages with the loop's settings
  (:func:`~mmaffseg.wsss.pseudo_label_stages.stage_labels`, which walks when a stage needs it).
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mmaffseg.ops.psa_stages import WALK_STAGES

from .label_store import leaf_dataset
from .pseudo_label_stages import (
    check_cam_size,
    packed_image_rgb,
    pil_scaled_inputs,
    preprocess_sample,
    stage_labels,
)

#: ``cams(img_norm, labels, cache, scaled_input) -> (cams, class_ids)``: the loop's CAMs of one
#: image, read from or written to its cache file ``cache``.
CamFunction = Callable[[Tensor, Tensor, str, Optional[Callable]], Tuple[Tensor, Tensor]]


@dataclass
class PSAImage:
    """One dataset image as the step fills it in.

    Args:
        data (dict): The packed sample (``inputs``, ``data_samples``).
        gt (np.ndarray, optional): ``(H, W)`` mask, when the pipeline loads one.
        class_labels (Tensor, optional): ``(C,)`` multi-hot image-level labels, None when the
            pipeline adds none.
    """

    data: dict
    gt: Optional[np.ndarray]
    class_labels: Optional[Tensor]
    #: ``(K, H, W)`` CAMs of the present classes and their ``(K,)`` classes (:meth:`cams`).
    cams: Optional[Tensor] = None
    class_ids: Optional[Tensor] = None
    #: ``(H, W, 3)`` uint8 RGB image of the dense CRF (:meth:`cams`).
    img_rgb: Optional[np.ndarray] = None
    #: The AffinityNet's affinities and their grid, once predicted (:meth:`affinities`).
    aff: Optional[Tuple[Tensor, Dict[str, int]]] = field(default=None, repr=False)


class ImageStep:
    """Sample -> CAMs -> affinities -> stage labels of one image (module docstring).

    Args:
        cam_model: The CAM classifier (``forward_cam`` and a data preprocessor).
        aff_model: The AffinityNet (``predict_affinity`` and an ``AffinityHead``), or None
            when no stage walks.
        cams (Callable): The loop's CAM function (:data:`CamFunction`).
        cam_scales (Sequence[float]): Its scales (an image must not vanish at the smallest).
        settings (Mapping): The loop's stage settings (:func:`stage_labels` keyword
            arguments: ``cam_bg_score``, the alphas, ``rw_beta``, ``rw_logt``).
        aff_hint (str): The AffinityNet checkpoint, named when its affinities are not finite.
    """

    def __init__(self, cam_model, aff_model, cams: CamFunction, cam_scales: Sequence[float],
                 settings: Mapping[str, Any], aff_hint: str = '') -> None:
        self.cam_model = cam_model
        self.aff_model = aff_model
        self._cams = cams
        self.cam_scales = cam_scales
        self.settings = settings
        self.aff_hint = aff_hint

    @staticmethod
    def load(dataset, index: int) -> PSAImage:
        """Item ``index`` of ``dataset`` through its pipeline (unreadable images raise)."""
        # prepare_data, not dataset[i]: BaseDataset would swap in a random other image when
        # the pipeline returns None
        dataset, index = leaf_dataset(dataset, index)
        data = dataset.prepare_data(index)
        if data is None:
            raise ValueError('the data pipeline dropped the image (returned None)')
        sample = data['data_samples']
        gt = sample.gt_sem_seg.data[0].cpu().numpy() if 'gt_sem_seg' in sample else None
        labels = sample.get('gt_class_labels')
        if labels is not None:
            labels = torch.as_tensor(np.asarray(labels), dtype=torch.float32).flatten()
        return PSAImage(data, gt, labels)

    def cams(self, image: PSAImage, cache: str) -> None:
        """Fill in the CAMs of ``image`` (cached in ``cache``), their classes and its RGB image.

        Raises:
            ValueError: The image has no image-level label or is too small for the CAM scales.
        """
        if image.class_labels is None or not image.class_labels.any():
            raise ValueError('the image has no image-level labels (gt_class_labels is all '
                             'zero): there is no class to localise; fix its labels or leave it '
                             'out of the dataset')
        data = image.data
        check_cam_size(data['inputs'].shape[-2:], self.cam_scales)
        img_norm = preprocess_sample(self.cam_model, data)
        image.img_rgb = packed_image_rgb(self.cam_model, data['inputs'])
        # PIL's resize for the other scales, as the reference (and the CAM cache) have them
        image.cams, image.class_ids = self._cams(img_norm, image.class_labels, cache,
                                                 pil_scaled_inputs(self.cam_model, data))

    def affinities(self, image: PSAImage) -> Tuple[Tensor, Dict[str, int]]:
        """The AffinityNet's ``(1, K, P)`` affinities of ``image`` and their grid
        (``dict(radius, stride)``), predicted on the first call."""
        if image.aff is None:
            if self.aff_model is None:
                raise ValueError(f'the stages {WALK_STAGES} walk the CAMs: the loop needs the '
                                 'AffinityNet')
            head = self.aff_model.decode_head
            aff = self.aff_model.predict_affinity(preprocess_sample(self.aff_model, image.data))
            image.aff = aff, dict(radius=head.radius, stride=head.label_stride)
        return image.aff

    def stage_labels(self, image: PSAImage, stages: Sequence[str]
                     ) -> Tuple[Dict[str, Tensor], Dict[str, np.ndarray]]:
        """:func:`stage_labels` of ``stages`` for ``image`` (after :meth:`cams`) with the loop's
        settings, walking with the image's affinities when a stage needs them."""
        aff, grid = (self.affinities(image) if set(WALK_STAGES) & set(stages) else (None, {}))
        return stage_labels(image.cams, image.class_ids, stages, aff, aff_hint=self.aff_hint,
                            **grid, **self.settings)
