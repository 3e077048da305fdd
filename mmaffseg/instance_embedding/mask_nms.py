# Copyright (c) mmaffseg contributors. All rights reserved.
"""Greedy non-maximum suppression of binary masks by mask IoU.

Not part of Fathi et al. 2017 (arXiv:1703.10277), whose seed selection relies on the diversity
term alone; offered as an opt-in ``test_cfg.mask_nms_thr`` of
:class:`~mmaffseg.models.segmentors.InstanceEmbeddingSegmentor` because an under-trained
embedding grows several near-identical masks from seeds of one object, each a false positive
for instance AP.
"""
import torch
from torch import Tensor

from ..ops.pairwise import pairwise_mask_iou


def mask_nms(masks: Tensor, scores: Tensor, iou_thr: float) -> Tensor:
    """Keep masks in decreasing score order unless one already kept overlaps them too much.

    Args:
        masks (Tensor): Bool masks (n, P).
        scores (Tensor): Scores (n,).
        iou_thr (float): A mask whose IoU with a kept, higher-scoring mask is above this is
            dropped; in (0, 1].

    Returns:
        Tensor: Bool (n,), True for the masks kept (in the input order).
    """
    if masks.dim() != 2 or scores.shape != masks.shape[:1]:
        raise ValueError(f'mask_nms expects masks (n, P) and scores (n,), got '
                         f'{tuple(masks.shape)} and {tuple(scores.shape)}')
    if not 0 < iou_thr <= 1:
        raise ValueError(f'mask_nms iou_thr must be in (0, 1], got {iou_thr}')
    keep = torch.zeros(masks.shape[0], dtype=torch.bool, device=masks.device)
    if masks.shape[0] == 0:
        return keep
    order = scores.argsort(descending=True)
    overlaps = pairwise_mask_iou(masks[order]) > iou_thr
    kept = torch.zeros_like(keep)
    for i in range(order.numel()):  # n <= the number of seeds: a short loop
        kept[i] = not (overlaps[i, :i] & kept[:i]).any()
    keep[order] = kept
    return keep
