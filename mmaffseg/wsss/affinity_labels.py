# Copyright (c) mmaffseg contributors. All rights reserved.
"""Affinity labels: which nearby pixel pairs belong together, inferred from CAMs.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

1. :func:`affinity_label_from_cams`: the CAM stack with a weak background (low alpha, 4) and
   with a strong one (high alpha, 32 in the reference code, 24 in the paper) are each refined by
   the dense CRF. Pixels whose low-alpha label is background are unknown (ignore); pixels whose
   high-alpha label is background are confident background (0); the rest keep their class.
   The result is an image-size label map, saved as PNG and read back as ``gt_sem_seg``.
2. :func:`downsample_label`: block majority vote to the feature stride (8).
3. :func:`affinity_pair_labels`: per radius pair, background-positive / foreground-positive /
   negative masks, as the reference ``ExtractAffinityLabelInRadius`` (any map size here).

Difference from the reference: it crops and block-averages the two CRF *score* maps and takes
the argmax afterwards; here the label map is cropped (padding = ignore) and then reduced by a
majority vote, so that the labels can travel through mmseg's data pipeline as a seg map.
"""
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmaffseg.ops.neighbour_offsets import neighbour_pairs
from mmaffseg.postprocessing.dense_crf import DenseCRF

from .cam import add_background, stack_to_label


def affinity_label_from_cams(img: np.ndarray,
                             cams: Union[Tensor, np.ndarray],
                             class_ids: Union[Tensor, np.ndarray],
                             low_alpha: float = 4,
                             high_alpha: float = 32,
                             crf: Optional[DenseCRF] = None,
                             ignore_index: int = 255) -> np.ndarray:
    """Image-size affinity-label map from the CAMs of one image.

    Args:
        img (np.ndarray): ``(H, W, 3)`` uint8 RGB image (for the CRF's bilateral term).
        cams (Tensor | np.ndarray): ``(K, H, W)`` CAMs of the present classes in [0, 1], e.g.
            from :func:`mmaffseg.wsss.cam.multi_scale_cam`.
        class_ids (Tensor | np.ndarray): ``(K,)`` 0-based classes of ``cams``.
        low_alpha (float): Background power of the weak-background map. Default: 4.
        high_alpha (float): Background power of the strong-background map. Default: 32.
        crf (DenseCRF, optional): The dense CRF; None builds ``DenseCRF()`` (PSA settings).
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


def downsample_label(label: Tensor, stride: int, ignore_index: int = 255) -> Tensor:
    """Reduce a label map by a block majority vote (ties: the smaller label wins).

    The map is padded with ``ignore_index`` to a multiple of ``stride``; ``ignore_index`` takes
    part in the vote like a class.

    Args:
        label (Tensor): Integer labels ``(..., H, W)``.
        stride (int): Block size.
        ignore_index (int): Label used for padding. Default: 255.

    Returns:
        Tensor: ``(..., ceil(H / stride), ceil(W / stride))``, the dtype of ``label``.
    """
    if stride == 1:
        return label
    height, width = label.shape[-2:]
    padded = F.pad(label, (0, -width % stride, 0, -height % stride), value=ignore_index)
    values, compact = torch.unique(padded, return_inverse=True)  # values ascending
    one_hot = F.one_hot(compact.reshape(-1, *compact.shape[-2:]), len(values))  # (N, H, W, V)
    votes = F.avg_pool2d(one_hot.permute(0, 3, 1, 2).float(), stride, stride)  # (N, V, h, w)
    out = values[votes.argmax(dim=1)]
    return out.view(*label.shape[:-2], *out.shape[-2:])


def affinity_pair_labels(label: Tensor, radius: int = 5,
                         ignore_index: int = 255) -> Tuple[Tensor, Tensor, Tensor]:
    """Pair targets of AffinityNet from a label map on the feature grid.

    For each radius pair (from, to), with equal labels called positive:
    ``bg_pos`` = positive and the from-label is 0; ``fg_pos`` = positive, from-label not 0 and
    both labels known; ``neg`` = different labels, both known. A pair touching ``ignore_index``
    is in no set (as the reference, two unknown pixels are "equal" but neither bg nor fg).

    Args:
        label (Tensor): Integer labels ``(..., h, w)`` (0 background, ``ignore_index`` unknown).
        radius (int): Pair radius. Default: 5.
        ignore_index (int): Unknown label. Default: 255.

    Returns:
        tuple[Tensor, Tensor, Tensor]: float32 ``bg_pos``, ``fg_pos``, ``neg``, each
        ``(..., K, P)`` in the pair order of
        :func:`mmaffseg.ops.neighbour_offsets.pair_indices`.
    """
    l_from, l_to = neighbour_pairs(label, radius)  # (..., 1, P), (..., K, P)
    known = (l_from != ignore_index) & (l_to != ignore_index)
    same = l_from == l_to
    bg_pos = same & (l_from == 0)
    fg_pos = same & (l_from != 0) & known
    neg = ~same & known
    return bg_pos.float(), fg_pos.float(), neg.float()
