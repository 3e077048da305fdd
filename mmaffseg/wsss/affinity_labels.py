# Copyright (c) mmaffseg contributors. All rights reserved.
"""Affinity labels: which nearby pixel pairs belong together, inferred from CAMs.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

1. :func:`affinity_label_from_cams`: the CAM stack with a weak background (low alpha, 4) and
   with a strong one (high alpha, 32 in the reference code, 24 in the paper) are each refined by
   the dense CRF. Pixels whose low-alpha label is background are unknown (ignore); pixels whose
   high-alpha label is background are confident background (0); the rest keep their class.
   The result is an image-size label map, saved as PNG and read back as ``gt_sem_seg``.
2. :func:`~mmaffseg.ops.affinity_pairs.downsample_label`: block majority vote to the
   feature stride (8), in the affinity head's loss.
3. :func:`~mmaffseg.ops.affinity_pairs.affinity_pair_labels`: per radius pair,
   background-positive / foreground-positive / negative masks, as the reference
   ``ExtractAffinityLabelInRadius`` (any map size here).

Difference from the reference: it crops and block-averages the two CRF *score* maps and takes
the argmax afterwards; here the label map is cropped (padding = ignore) and then reduced by a
majority vote, so that the labels can travel through mmseg's data pipeline as a seg map. At the
border of a crop's zero canvas the reference keeps a block's class when it holds any image
pixel; here a block at least half canvas (ignore) becomes unknown, so its pairs leave the loss.
"""
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from mmaffseg.ops.psa_defaults import PSA_DEFAULTS
from mmaffseg.postprocessing.dense_crf import DenseCRF

from .cam import add_background, stack_to_label


def affinity_label_from_cams(img: np.ndarray,
                             cams: Union[Tensor, np.ndarray],
                             class_ids: Union[Tensor, np.ndarray],
                             low_alpha: float = PSA_DEFAULTS.low_alpha,
                             high_alpha: float = PSA_DEFAULTS.high_alpha,
                             crf: Optional[DenseCRF] = None,
                             ignore_index: int = 255) -> np.ndarray:
    """Image-size affinity-label map from the CAMs of one image.

    Args:
        img (np.ndarray): ``(H, W, 3)`` uint8 RGB image (for the CRF's bilateral term).
        cams (Tensor | np.ndarray): ``(K, H, W)`` CAMs of the present classes in [0, 1], e.g.
            from :func:`mmaffseg.wsss.cam.multi_scale_cam`.
        class_ids (Tensor | np.ndarray): ``(K,)`` 0-based classes of ``cams``.
        low_alpha (float): Background power of the weak-background map. Default: PSA's.
        high_alpha (float): Background power of the strong-background map. Default: PSA's.
        crf (DenseCRF, optional): The dense CRF; None builds one with PSA's settings.
            Its ``workers`` > 1 runs the two CRFs in parallel.
        ignore_index (int): Label of unknown pixels. Default: 255.

    Returns:
        np.ndarray: ``(H, W)`` uint8: 0 confident background, ``k + 1`` class k, ``ignore_index``
        unknown.
    """
    cams = torch.as_tensor(cams, dtype=torch.float32).cpu()
    class_ids = torch.as_tensor(class_ids).long().cpu()
    if cams.dim() != 3 or cams.shape[0] != class_ids.numel():
        raise ValueError(f'cams must be (K, H, W) with K = len(class_ids) = {class_ids.numel()}, '
                         f'got shape {tuple(cams.shape)}')
    crf = DenseCRF() if crf is None else crf
    stacks = [add_background(cams, alpha).numpy() for alpha in (low_alpha, high_alpha)]
    return affinity_label_from_crf(*crf.batch(stacks, [img, img]), class_ids, ignore_index)


def affinity_label_from_crf(low_q: np.ndarray, high_q: np.ndarray,
                            class_ids: Union[Tensor, np.ndarray],
                            ignore_index: int = 255) -> np.ndarray:
    """The affinity-label map from the two CRF-refined score stacks.

    The second half of :func:`affinity_label_from_cams`, for callers that run many CRFs at once
    (the pseudo-label runner batches them across images).

    Args:
        low_q (np.ndarray): ``(K + 1, H, W)`` CRF marginals of the low-alpha stack.
        high_q (np.ndarray): ``(K + 1, H, W)`` CRF marginals of the high-alpha stack.
        class_ids (Tensor | np.ndarray): ``(K,)`` 0-based classes of the stack channels 1..K.
        ignore_index (int): Label of unknown pixels. Default: 255.

    Returns:
        np.ndarray: ``(H, W)`` uint8 affinity labels (see :func:`affinity_label_from_cams`).
    """
    low, high = (torch.from_numpy(np.asarray(q).argmax(0)) for q in (low_q, high_q))
    label = stack_to_label(low, torch.as_tensor(class_ids).long())
    label[low == 0] = ignore_index
    label[high == 0] = 0
    return label.numpy().astype(np.uint8)
