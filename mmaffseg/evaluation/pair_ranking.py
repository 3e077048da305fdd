# Copyright (c) mmaffseg contributors. All rights reserved.
"""Pair ranking accuracy of a per-pixel embedding.

A check that an embedding groups pixels by segment, used for the Semantic Soft Segmentation
features (Aksoy, Oh, Paris, Pollefeys and Matusik, "Semantic Soft Segmentation", ACM
Transactions on Graphics (Proc. SIGGRAPH), 2018), which have no standard benchmark.

Draw pixels of an image, split all pairs of drawn pixels into same-segment and
different-segment pairs; the accuracy is the fraction of (same pair, different pair)
combinations in which the same-segment pair is the nearer one (ties count one half), i.e. the
area under the ROC curve of "distance below a threshold" as a same-segment detector. 0.5 is
chance, 1.0 a perfect ordering.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS
from torch import Tensor

from ..ops.pairwise import pairwise_squared_distances
from ..structures.instance_map import segment_labels


def ranking_accuracy(same: Tensor, different: Tensor) -> float:
    """Fraction of (same, different) combinations with ``same < different`` (ties: 1/2).

    Args:
        same (Tensor): 1-D distances of same-segment pairs.
        different (Tensor): 1-D distances of different-segment pairs.

    Returns:
        float: In [0, 1]; NaN when either set is empty.
    """
    if same.numel() == 0 or different.numel() == 0:
        return float('nan')
    same = same.double().sort().values
    different = different.double().contiguous()
    below = torch.searchsorted(same, different, right=False).double()  # same < d
    at_or_below = torch.searchsorted(same, different, right=True).double()  # same <= d
    wins = (below + 0.5 * (at_or_below - below)).sum()
    return (wins / (same.numel() * different.numel())).item()


def pair_ranking_accuracy(embedding: Tensor,
                          labels: Tensor,
                          num_samples: int = 1000,
                          ignore_index: int = 255,
                          generator: Optional[torch.Generator] = None) -> float:
    """Pair ranking accuracy of one image's embedding against its segments.

    Args:
        embedding (Tensor): Features (C, H, W).
        labels (Tensor): Segment ids (H, W); ``ignore_index`` pixels are skipped.
        num_samples (int): Pixels drawn uniformly without replacement among the labelled ones
            (all of them when fewer); all their pairs are compared. Defaults to 1000.
        ignore_index (int): Ignored label. Defaults to 255.
        generator (torch.Generator, optional): CPU generator for a reproducible draw.

    Returns:
        float: Accuracy in [0, 1]; NaN when the image has fewer than two segments.
    """
    if embedding.dim() != 3 or embedding.shape[1:] != labels.shape[-2:]:
        raise ValueError(f'pair_ranking_accuracy expects an embedding (C, H, W) and labels '
                         f'(H, W) of the same size, got {tuple(embedding.shape)} and '
                         f'{tuple(labels.shape)}')
    flat = labels.reshape(-1)
    valid = (flat != ignore_index).nonzero().squeeze(1)
    pick = torch.randperm(valid.numel(), generator=generator)[:num_samples].to(valid.device)
    index = valid[pick]
    points = embedding.flatten(1).t()[index].double()  # (N, C)
    seg = flat[index]
    dist = pairwise_squared_distances(points)  # same order as L2 distances
    upper = torch.triu(torch.ones_like(dist, dtype=torch.bool), diagonal=1)
    same = (seg[:, None] == seg[None, :]) & upper
    return ranking_accuracy(dist[same], dist[upper & ~same])


@METRICS.register_module()
class PairRankingMetric(BaseMetric):
    """Mean pair ranking accuracy of predicted embeddings over a dataset.

    Reads ``data_sample.seg_logits.data`` (the embedding at the label size, as
    ``FeatureEmbeddingSegmentor`` predicts it), ``gt_sem_seg`` and, when present,
    ``gt_instance_map``; segments are the class-agnostic ones of
    :func:`mmaffseg.structures.instance_map.segment_labels`. Images with fewer than two segments
    are skipped. Each image's pixel draw is seeded by ``seed`` and its index in the run, so
    results are reproducible.

    Args:
        num_samples (int): Pixels drawn per image. Defaults to 1000.
        ignore_index (int): Ignored label. Defaults to 255.
        seed (int): Seed of the pixel draws. Defaults to 0.
        collect_device (str): Device for collecting results across ranks. Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names. Defaults to None.
    """

    def __init__(self,
                 num_samples: int = 1000,
                 ignore_index: int = 255,
                 seed: int = 0,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_samples = num_samples
        self.ignore_index = ignore_index
        self.seed = seed
        self._count = 0

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score each image of a batch."""
        for sample in data_samples:
            embedding = sample['seg_logits']['data']
            sem = sample['gt_sem_seg']['data'][0].to(embedding.device)
            inst = sample.get('gt_instance_map')
            inst = None if inst is None else inst['data'][0].to(embedding.device)
            labels = segment_labels(sem, inst, self.ignore_index)
            gen = torch.Generator().manual_seed(self.seed + self._count)
            self._count += 1
            acc = pair_ranking_accuracy(embedding, labels, self.num_samples,
                                        self.ignore_index, gen)
            if not np.isnan(acc):
                self.results.append(acc)

    def compute_metrics(self, results: List[float]) -> Dict[str, float]:
        """Mean accuracy over the scored images."""
        self._count = 0
        if not results:
            return dict(pair_ranking_acc=float('nan'), num_images=0)
        return dict(pair_ranking_acc=float(np.mean(results)), num_images=len(results))
