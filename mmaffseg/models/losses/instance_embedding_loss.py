# Copyright (c) mmaffseg contributors. All rights reserved.
"""Weighted logistic pair loss on sampled pixel embeddings, for instance segmentation.

Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance Segmentation via
Deep Metric Learning", arXiv:1703.10277, 2017.

Per image, ``num_points`` pixels are drawn uniformly (with replacement) inside every instance of
the instance map, background (id 0) counting as one more instance; void pixels are never drawn.
With the similarity ``sigma(p, q) = 2 / (1 + exp(|e_p - e_q|^2))`` of
:mod:`~mmaffseg.ops.embedding_similarity`, the loss over the ``S`` drawn points is::

    L_e = - sum_{p != q} w_pq [ y_pq log sigma(p, q) + (1 - y_pq) log(1 - sigma(p, q)) ]

with ``y_pq = 1`` when p and q lie in the same instance. Both logarithms are evaluated in closed
form from the squared distance (no ``log 0``). All ``S x S`` distances come from one matrix
product (:func:`~mmaffseg.ops.pairwise.pairwise_squared_distances`).

Weights: the paper makes ``w_pq`` inversely proportional to the sizes of the instances of p and
q and normalises them to sum to 1. We use ``w_pq ∝ (1 / n_p + 1 / n_q) / 2`` with ``n_p`` the
pixel count (at the loss resolution) of p's instance, so a pair weighs as much as the smaller of
its instances asks; a product ``1 / (n_p n_q)`` would let the pairs of large instances (the
background above all) vanish. ``size_weighting=False`` gives uniform weights. The diagonal
(``p = q``, a zero cost) is left out.

Zero-loss contract: an image without valid pixels contributes nothing; the batch loss is the
mean over the other images (of the whole distributed batch, see
:class:`InstanceEmbeddingLoss`), and an exact 0 still connected to the embedding when there are
none.
An image holding a single instance still contributes its same-instance pairs.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from mmaffseg.utils.batch_reduction import mean_over_images

from ...ops.embedding_similarity import log_dissimilarity, log_similarity
from ...ops.pairwise import pairwise_squared_distances
from ...ops.precision import float32_math
from ..utils.counting import count_occurrences
from ..utils.segment_sampling import SegmentDraws, sample_segment_pixels_batched

#: Per image: flat pixel indices (S,) and the instance id of each (S,).
Points = Tuple[Tensor, Tensor]


def sample_instance_points(instance_map: Tensor,
                           num_points: int,
                           ignore_index: int = 255,
                           generator: Optional[torch.Generator] = None
                           ) -> Optional[Points]:
    """Draw ``num_points`` pixels in every instance (background included) of one image.

    Args:
        instance_map (Tensor): Instance ids of one image, shape (H, W), integer.
        num_points (int): Pixels per instance (K), drawn uniformly with replacement.
        ignore_index (int): Void id, never drawn. Defaults to 255.
        generator (torch.Generator, optional): Random generator on the map's device.

    Returns:
        tuple[Tensor, Tensor] | None: ``(index, instance)``, both (S,) int64 with
        ``S = K * number of instances``: flat indices into the map and the instance id of each.
        ``None`` when the image has no valid pixel.
    """
    return _split_points(
        sample_segment_pixels_batched(instance_map[None], None, num_points, 1, ignore_index,
                                      generator), num_points)[0]


def _split_points(drawn: SegmentDraws, num_points: int) -> List[Optional[Points]]:
    """Per image the real points of a one-draw :class:`SegmentDraws` (host-known sizes)."""
    return [
        None if n == 0 else (drawn.index[b, 0, :n * num_points],
                             drawn.segment[b, 0, :n * num_points])
        for b, n in enumerate(drawn.num_segments_list)
    ]


def instance_size_weights(instance_map: Tensor, instance: Tensor,
                          ignore_index: int = 255) -> Tensor:
    """``1 / n`` for every point, ``n`` the pixel count of its instance in the map.

    Args:
        instance_map (Tensor): Instance ids of one image, any shape.
        instance (Tensor): Instance id of every point, shape (S,).
        ignore_index (int): Void id, not counted. Defaults to 255.

    Returns:
        Tensor: (S,) float32 weights.
    """
    # The void id never occurs in ``instance``, so counting it along does not matter; one
    # sort and binary search, no host synchronisation.
    counts = count_occurrences(instance.long(), instance_map.reshape(-1).long())
    return 1.0 / counts.float()


@float32_math
def instance_embedding_loss(points: Tensor, instance: Tensor, point_weight: Tensor,
                            min_sq_dist: float = 1e-6) -> Tensor:
    """Weighted logistic pair loss of one set of points (see the module docstring).

    Args:
        points (Tensor): Embeddings of the sampled points, shape (S, C).
        instance (Tensor): Instance id of every point, shape (S,).
        point_weight (Tensor): Per-point weight ``1 / n_p`` (or ones), shape (S,); the pair
            weight is ``(w_p + w_q) / 2`` normalised over the pairs ``p != q``.
        min_sq_dist (float): Clamp of ``d2`` in ``log(1 - sigma)``. Defaults to 1e-6.

    Returns:
        Tensor: Scalar loss; 0 (still connected to ``points``) when ``S < 2``.
    """
    num = points.shape[0]
    if num < 2:
        return points.sum() * 0.0
    sq = pairwise_squared_distances(points)  # (S, S)
    same = instance.unsqueeze(1) == instance.unsqueeze(0)
    nll = torch.where(same, -log_similarity(sq), -log_dissimilarity(sq, min_sq_dist))
    w = point_weight.to(points)
    pair_weight = (w.unsqueeze(1) + w.unsqueeze(0)) / 2
    pair_weight = pair_weight * (1 - torch.eye(num, dtype=w.dtype, device=w.device))
    return (pair_weight * nll).sum() / pair_weight.sum()


@MODELS.register_module()
class InstanceEmbeddingLoss(nn.Module):
    """Metric loss of Fathi et al. on a dense embedding (see the module docstring).

    Batch and distributed training: the paper normalises the pair weights per image (they sum
    to 1 over the image's pairs), so the loss of an image does not depend on the others; the
    batch loss is the mean over the images with valid pixels of the **whole** batch. Under DDP
    (``reduce_across_ranks=True``) the sum of the per-image losses and the number of such
    images are summed over all processes (:func:`~mmaffseg.utils.batch_reduction.mean_over_images`)
    before the division, so every rank logs, and after DDP's gradient averaging trains with,
    the single-process value of the global batch, also when ranks hold different numbers of
    images with valid pixels. With ``reduce_across_ranks=False`` the mean is per rank. One
    process: both are the same.

    Host synchronisations: one per batch when the points are drawn here (the instance counts
    that size them; see :mod:`~mmaffseg.models.utils.segment_sampling`), none when they are
    passed in, whatever the number of images or instances.

    Args:
        num_points (int): Points drawn per instance (K), background included. Defaults to 10.
        size_weighting (bool): Weight pairs by the inverse sizes of their instances; uniform
            otherwise. Defaults to True.
        min_sq_dist (float): Clamp of the squared distance in ``log(1 - sigma)``.
            Defaults to 1e-6.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Name in the log; must start with ``loss_`` to be summed by mmseg.
            Defaults to ``'loss_emb'``.
        reduce_across_ranks (bool): Average over the images of all processes (see above);
            False: of this process. Defaults to True.
    """

    def __init__(self,
                 num_points: int = 10,
                 size_weighting: bool = True,
                 min_sq_dist: float = 1e-6,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_emb',
                 reduce_across_ranks: bool = True) -> None:
        super().__init__()
        if num_points < 1:
            raise ValueError(f'InstanceEmbeddingLoss num_points must be >= 1, got {num_points}')
        self.num_points = num_points
        self.size_weighting = size_weighting
        self.min_sq_dist = min_sq_dist
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.reduce_across_ranks = reduce_across_ranks

    def sample_points(self, instance_maps: Tensor, ignore_index: int = 255,
                      generator: Optional[torch.Generator] = None
                      ) -> List[Optional[Points]]:
        """Draw the points of every image of a batch (see :func:`sample_instance_points`).

        Args:
            instance_maps (Tensor): Instance ids, shape (B, H, W).
            ignore_index (int): Void id. Defaults to 255.
            generator (torch.Generator, optional): Random generator on the maps' device.

        Returns:
            list[tuple[Tensor, Tensor] | None]: Per image ``(index, instance)`` or ``None``.
        """
        drawn = sample_segment_pixels_batched(instance_maps, None, self.num_points, 1,
                                              ignore_index, generator)
        return _split_points(drawn, self.num_points)

    def forward(self,
                embedding: Tensor,
                instance_maps: Tensor,
                points: Optional[List[Optional[Points]]] = None,
                ignore_index: int = 255,
                generator: Optional[torch.Generator] = None,
                **kwargs) -> Tensor:
        """Loss of a batch of embeddings.

        Args:
            embedding (Tensor): Per-pixel embeddings, shape (B, C, H, W).
            instance_maps (Tensor): Instance ids, shape (B, H, W), at the embedding's size.
            points (list, optional): Points drawn beforehand by :meth:`sample_points` (so that
                other losses can use the same ones); drawn here when omitted.
            ignore_index (int): Void id. Defaults to 255.
            generator (torch.Generator, optional): Random generator for the drawing.
            **kwargs: Ignored (mmseg passes ``weight`` to every decode loss).

        Returns:
            Tensor: Scalar, ``loss_weight`` times the mean over images with valid pixels.
        """
        if embedding.dim() != 4 or instance_maps.shape != (embedding.shape[0],
                                                           *embedding.shape[2:]):
            raise ValueError(
                'InstanceEmbeddingLoss expects an embedding (B, C, H, W) and instance maps '
                f'(B, H, W) of the same size, got {tuple(embedding.shape)} and '
                f'{tuple(instance_maps.shape)}; resize the maps (nearest) to the embedding first')
        if points is None:
            points = self.sample_points(instance_maps, ignore_index, generator)
        per_image = []
        for emb, inst_map, drawn in zip(embedding, instance_maps, points):
            if drawn is None:
                continue
            index, instance = drawn
            if self.size_weighting:
                weight = instance_size_weights(inst_map, instance, ignore_index)
            else:
                weight = torch.ones_like(instance, dtype=torch.float32)
            point_emb = emb.flatten(1).t()[index]  # (S, C)
            per_image.append(
                instance_embedding_loss(point_emb, instance, weight, self.min_sq_dist))
        return mean_over_images(per_image, embedding, self.reduce_across_ranks, self.loss_weight)

    @property
    def loss_name(self) -> str:
        """Name of the loss item in the log."""
        return self._loss_name
