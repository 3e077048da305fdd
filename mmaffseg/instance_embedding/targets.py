# Copyright (c) mmaffseg contributors. All rights reserved.
"""Training targets of the seediness head: the class of the mask grown from a seed pixel.

Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance Segmentation via
Deep Metric Learning", arXiv:1703.10277, 2017.

The mask grown from a seed ``p`` at threshold ``tau`` is ``m(p, tau) = {q : sigma(p, q) >=
tau}`` (:func:`~mmaffseg.ops.embedding_similarity.grow_masks`); its target class is the class
of the ground truth instance it overlaps with IoU above ``iou_thr``, background otherwise.
:func:`grown_mask_ious` is shared with :func:`~mmaffseg.instance_embedding.oracle_seeds`.
"""
from typing import Tuple

import torch
from torch import Tensor

from ..ops.embedding_similarity import grow_masks, similarity
from ..ops.pairwise import pairwise_mask_iou, pairwise_squared_distances


def grown_mask_ious(embedding: Tensor,
                    instance_map: Tensor,
                    ids: Tensor,
                    index: Tensor,
                    taus: Tensor,
                    ignore_index: int = 255) -> Tensor:
    """IoU of the masks ``m(p, tau)`` grown from seed pixels with given GT instances.

    Args:
        embedding (Tensor): Embedding (C, h, w).
        instance_map (Tensor): Instance ids (h, w); ``ignore_index`` = void (left out of every
            mask and every IoU).
        ids (Tensor): The n instance ids to compare with, shape (n,).
        index (Tensor): Flat indices of the S seed pixels, shape (S,).
        taus (Tensor): Thresholds, shape (T,).
        ignore_index (int): Void id. Defaults to 255.

    Returns:
        Tensor: (T, S, n) float IoU.
    """
    pixels = embedding.flatten(1).t()  # (P, C)
    inst = instance_map.reshape(-1)
    valid = inst != ignore_index
    gt = inst[valid].unsqueeze(0) == ids.to(inst).unsqueeze(1)  # (n, P_valid)
    sim = similarity(pairwise_squared_distances(pixels[index], pixels[valid]))  # (S, P_valid)
    return pairwise_mask_iou(grow_masks(sim, taus), gt)  # (T, S, n)


def seed_class_targets(embedding: Tensor,
                       instance_map: Tensor,
                       instance_class: Tuple[Tensor, Tensor],
                       index: Tensor,
                       taus: Tensor,
                       iou_thr: float = 0.5,
                       ignore_index: int = 255) -> Tensor:
    """Class targets of the masks grown from the sampled points of one image.

    Args:
        embedding (Tensor): Embedding (C, h, w) (detach it: the targets are constants).
        instance_map (Tensor): Instance ids (h, w); 0 = no instance, ``ignore_index`` = void
            (left out of every mask and every IoU).
        instance_class (tuple[Tensor, Tensor]): ``(ids, classes)`` from
            :func:`~mmaffseg.structures.instance_map.instance_classes`: class index
            0..num_classes-1 of every instance id, -1 for instances of no object class.
        index (Tensor): Flat indices of the seed points, shape (S,).
        taus (Tensor): Thresholds, shape (T,).
        iou_thr (float): A mask takes the class of a GT instance it overlaps with IoU above
            this. Defaults to 0.5.
        ignore_index (int): Void id. Defaults to 255.

    Returns:
        Tensor: (T, S) int64 targets, 0 = background, ``1 + class`` otherwise.
    """
    ids, classes = instance_class
    targets = index.new_zeros((len(taus), index.numel()))
    if ids.numel() == 0 or index.numel() == 0:
        return targets
    iou = grown_mask_ious(embedding, instance_map, ids, index, taus, ignore_index)
    best_iou, best = iou.max(-1)  # (T, S)
    cls = (classes.to(index) + 1)[best]
    return torch.where(best_iou > iou_thr, cls, targets)
