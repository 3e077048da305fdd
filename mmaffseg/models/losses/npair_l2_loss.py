# Copyright (c) mmaffseg contributors. All rights reserved.
"""N-pair L2 metric loss over sampled pixels, from Semantic Soft Segmentation.

Aksoy, Oh, Paris, Pollefeys and Matusik, "Semantic Soft Segmentation", ACM Transactions on
Graphics (Proc. SIGGRAPH), 2018.

Per image, ``num_instances`` segments are drawn uniformly without replacement from the segments
present (instance ids, or semantic labels when the dataset has no instances), and
``num_pixels`` pixels are drawn uniformly with replacement inside each of them, so every chosen
segment contributes the same number of points. All ``N = num_instances * num_pixels`` points are
compared with each other at once (one ``(N, N)`` distance matrix, via
:func:`~mmaffseg.ops.pairwise.pairwise_squared_distances`). The draw is repeated
``num_resamples`` times per image and the losses averaged, as the paper accumulates gradients
over 10 draws. Memory therefore grows with ``num_resamples * N**2``, never with the image size.

Two pair costs, each with its source's normalisation (``P`` = the ``N`` drawn points, the sum
running over all ``N**2`` ordered pairs, the diagonal included; it costs 0 in both forms):

- ``form='paper'`` (default), the semantic-soft-segmentation supplementary's loss, with
  ``D = distance_scale * |f_p - f_q|`` (``distance_scale`` defaults to ``1 / embed_dims``,
  "normalised by dimension")::

      L = 1 / |P| * sum_{p, q in P} l(p, q)
      same segment:       l(p, q) = log((1 + exp(D)) / 2)
      different segments: l(p, q) = log((1 + exp(-D)) / 2)

  ``1 / |P|``, not ``1 / |P|**2``: the loss grows with N, and each point's gradient is the
  mean (times 2) of its pair gradients, whatever N. This is ``normalization='points'``.

- ``form='sigmoid'``, the logistic form of the official repository's ``lossfunction``
  (``deeplab_resnet/hc_deeplab.py``; the plain mean over the ``N**2`` pairs,
  ``normalization='pairs'``), with ``sigma = 2 / (1 + exp(|f_p - f_q|^2 / temperature))``
  (temperature 64)::

      same segment:       -pos_weight * log(sigma)          (pos_weight 3)
      different segments: -neg_weight * log(1 - sigma)      (neg_weight 1)

  It is not the loss the released model was trained with: that repository ships the feature
  extractor only (its README: "the training code is not included"); ``lossfunction`` and
  ``train`` are marked deprecated there, and that ``train`` optimises only the weight decay,
  never calling ``lossfunction``. So neither form is a verified "official" training loss; the
  sigmoid form is the one written in that code.

  ``-log(1 - sigma)`` is computed as ``-log(tanh(x / 2))`` with ``tanh`` clamped at 1e-6, so
  two different-segment pixels with identical features cost 13.8 instead of infinity.

``normalization`` overrides the form's default (``'points'``: ``1 / N``, ``'pairs'``:
``1 / N**2``); the two differ by the factor N (3000 at the paper's 3 x 1000 samples), which an
SGD learning rate has to absorb.

Which images contribute: those with at least ``min_segments`` segments (ignored pixels are
not a segment). The default is ``num_instances``, the official rule (its training loop skips an
image whose label map holds fewer than ``NINST = 3`` distinct values; it then always draws
exactly ``NINST`` segments); ``min_segments=2`` also trains on images with fewer segments than
``num_instances``, drawing all of them. The official count includes every value of the map
(its ignore / padding value too); ours does not. An image with fewer than two segments never
contributes (it has no different-segment pair).

Zero-loss contract: the batch loss is the mean over the images that contribute, in the whole
distributed batch (see :class:`NPairL2Loss`); when none does, the loss is an exact 0 that is
still connected to the embedding (zero gradients, never NaN).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from mmaffseg.utils.batch_reduction import mean_over_images

from ...ops.pairwise import pairwise_squared_distances
from ..utils.segment_sampling import sample_segment_pixels_batched

_FORMS = ('paper', 'sigmoid')
_NORMALIZATIONS = ('points', 'pairs')
#: Each form's normalisation in its source: the paper's 1/|P|, the official code's mean.
_DEFAULT_NORMALIZATION = dict(paper='points', sigmoid='pairs')
_LOG2 = math.log(2.0)


def sample_segment_pixels(labels: Tensor,
                          num_instances: int,
                          num_pixels: int,
                          num_resamples: int = 1,
                          ignore_index: int = 255,
                          generator: Optional[torch.Generator] = None
                          ) -> Optional[Tuple[Tensor, Tensor]]:
    """Draw ``num_pixels`` pixels in each of ``num_instances`` random segments of one image.

    Segments are drawn uniformly without replacement (all of them when fewer than
    ``num_instances`` are present), pixels uniformly with replacement within a segment. One
    image of :func:`~mmaffseg.models.utils.segment_sampling.sample_segment_pixels_batched`,
    which the loss calls on the whole batch.

    Args:
        labels (Tensor): Segment ids of one image, shape (H, W) (or any shape; it is flattened),
            integer. ``ignore_index`` marks pixels that are never drawn.
        num_instances (int): Segments per draw.
        num_pixels (int): Pixels per segment.
        num_resamples (int): Independent draws. Defaults to 1.
        ignore_index (int): Label of ignored pixels. Defaults to 255.
        generator (torch.Generator, optional): Random generator on ``labels``' device, for
            reproducible draws. Defaults to torch's global generator.

    Returns:
        tuple[Tensor, Tensor] | None: ``(index, segment)``, both (num_resamples, K * num_pixels)
        int64 with ``K = min(num_instances, number of segments)``: flat pixel indices into
        ``labels`` and the segment id of each, grouped segment by segment. ``None`` when fewer
        than two segments are present.
    """
    drawn = sample_segment_pixels_batched(labels.reshape(1, -1), num_instances, num_pixels,
                                          num_resamples, ignore_index, generator)
    if drawn.num_segments_list[0] < 2:
        return None
    return drawn.index[0], drawn.segment[0]


def npair_l2_pair_loss(points: Tensor,
                       segment: Tensor,
                       form: str = 'paper',
                       distance_scale: Optional[float] = None,
                       temperature: float = 64.0,
                       pos_weight: Optional[float] = None,
                       neg_weight: Optional[float] = None,
                       normalization: Optional[str] = None) -> Tensor:
    """Normalised sum of the pair costs of each point set (module docstring: both forms).

    Args:
        points (Tensor): Sampled features, shape (..., N, C).
        segment (Tensor): Segment id of every point, shape (..., N).
        form (str): ``'paper'`` or ``'sigmoid'``. Defaults to ``'paper'``.
        distance_scale (float, optional): Paper form: ``D = distance_scale * |f_p - f_q|``.
            Defaults to ``1 / C``.
        temperature (float): Sigmoid form: divisor of the squared distance. Defaults to 64.
        pos_weight (float, optional): Weight of same-segment pairs. Defaults to 1 (paper) or 3
            (sigmoid).
        neg_weight (float, optional): Weight of different-segment pairs. Defaults to 1.
        normalization (str, optional): ``'points'`` (the sum over all N * N ordered pairs
            divided by N) or ``'pairs'`` (divided by N * N, the mean). Defaults to the form's
            source: ``'points'`` (paper), ``'pairs'`` (sigmoid, official code).

    Returns:
        Tensor: Shape (...): the loss of each set.
    """
    if form not in _FORMS:
        raise ValueError(f'form must be one of {_FORMS}, got {form!r}')
    if normalization is None:
        normalization = _DEFAULT_NORMALIZATION[form]
    if normalization not in _NORMALIZATIONS:
        raise ValueError(f'normalization must be one of {_NORMALIZATIONS}, got '
                         f'{normalization!r}')
    if pos_weight is None:
        pos_weight = 1.0 if form == 'paper' else 3.0
    if neg_weight is None:
        neg_weight = 1.0
    sq = pairwise_squared_distances(points)  # (..., N, N)
    same = segment.unsqueeze(-1) == segment.unsqueeze(-2)
    if form == 'paper':
        scale = 1.0 / points.shape[-1] if distance_scale is None else distance_scale
        # sqrt has an infinite slope at 0: pairs at (numerically) zero distance get D = 0 and
        # no gradient, everything else the exact distance.
        tiny = 1e-6
        dist = torch.where(sq > tiny, sq.clamp_min(tiny).sqrt(), sq.new_zeros(()))
        dist = scale * dist
        pos = F.softplus(dist) - _LOG2  # log((1 + e^D) / 2)
        neg = F.softplus(-dist) - _LOG2  # log((1 + e^-D) / 2)
    else:
        x = sq / temperature
        pos = F.softplus(x) - _LOG2  # -log(sigma)
        neg = -torch.log(torch.tanh(x / 2).clamp_min(1e-6))  # -log(1 - sigma)
    cost = torch.where(same, pos_weight * pos, neg_weight * neg)
    num_points = points.shape[-2]
    divisor = num_points if normalization == 'points' else num_points * num_points
    return cost.sum(dim=(-1, -2)) / divisor


@MODELS.register_module()
class NPairL2Loss(nn.Module):
    """N-pair L2 metric loss on a dense embedding, class-agnostic.

    See the module docstring for the sampling, both pair costs and the zero-loss contract.

    Batch and distributed training: the paper's loss is per image (the mean over its
    ``num_resamples`` draws); the batch loss is the mean over the contributing images of the
    **whole** batch. Under DDP (``reduce_across_ranks=True``) the sum of the per-image losses
    and the number of contributing images are summed over all processes
    (:func:`~mmaffseg.utils.batch_reduction.mean_over_images`) before the division, so every rank
    logs, and after DDP's gradient averaging trains with, the single-process value of the
    global batch, also when ranks hold different numbers of contributing images. With
    ``reduce_across_ranks=False`` the mean is per rank (each rank, not each image, weighs the
    same). One process: both are the same.

    Host synchronisations: one per batch (the segment counts that size the draws; see
    :mod:`~mmaffseg.models.utils.segment_sampling`), whatever the number of images or segments.

    Args:
        num_instances (int): Segments drawn per image (P_inst). Defaults to 3.
        num_pixels (int): Pixels drawn per segment (P_pix; the official code uses 500).
            Defaults to 1000.
        num_resamples (int): Draws per image whose losses are averaged. Defaults to 10.
        form (str): ``'paper'`` or ``'sigmoid'`` (the official repository's deprecated
            ``lossfunction``; see the module docstring). Defaults to ``'paper'``.
        distance_scale (float, optional): Paper form's distance scale. Defaults to
            ``1 / embed_dims``.
        temperature (float): Sigmoid form's squared-distance divisor. Defaults to 64.
        pos_weight (float, optional): Same-segment weight; defaults to 1 (paper) or 3 (sigmoid).
        neg_weight (float, optional): Different-segment weight. Defaults to 1.
        normalization (str, optional): ``'points'`` (1 / N, the paper's) or ``'pairs'``
            (1 / N**2, the official code's mean). Defaults to the form's source.
        min_segments (int, optional): Segments (ignored pixels excluded) an image needs to
            contribute; >= 2. Defaults to ``num_instances``, the official rule (images with
            fewer labels are skipped).
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Name in the log; must start with ``loss_`` to be summed by mmseg.
            Defaults to ``'loss_npair'``.
        reduce_across_ranks (bool): Average over the contributing images of all processes
            (see above); False: of this process. Defaults to True.
    """

    def __init__(self,
                 num_instances: int = 3,
                 num_pixels: int = 1000,
                 num_resamples: int = 10,
                 form: str = 'paper',
                 distance_scale: Optional[float] = None,
                 temperature: float = 64.0,
                 pos_weight: Optional[float] = None,
                 neg_weight: Optional[float] = None,
                 normalization: Optional[str] = None,
                 min_segments: Optional[int] = None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_npair',
                 reduce_across_ranks: bool = True) -> None:
        super().__init__()
        if form not in _FORMS:
            raise ValueError(f'NPairL2Loss form must be one of {_FORMS}, got {form!r}')
        if normalization is not None and normalization not in _NORMALIZATIONS:
            raise ValueError(f'NPairL2Loss normalization must be one of {_NORMALIZATIONS} (or '
                             f'None: the form\'s own), got {normalization!r}')
        for name, value in (('num_instances', num_instances), ('num_pixels', num_pixels),
                            ('num_resamples', num_resamples)):
            if value < 1:
                raise ValueError(f'NPairL2Loss {name} must be >= 1, got {value}')
        if num_instances < 2:
            raise ValueError('NPairL2Loss num_instances must be >= 2 (a draw needs a '
                             f'different-segment pair), got {num_instances}')
        if min_segments is None:
            min_segments = num_instances
        if not (isinstance(min_segments, int) and min_segments >= 2):
            raise ValueError('NPairL2Loss min_segments must be an int >= 2 (an image needs a '
                             f'different-segment pair), got {min_segments!r}')
        self.num_instances = num_instances
        self.min_segments = min_segments
        self.num_pixels = num_pixels
        self.num_resamples = num_resamples
        self.form = form
        self.distance_scale = distance_scale
        self.temperature = temperature
        self.pos_weight = pos_weight
        self.neg_weight = neg_weight
        self.normalization = normalization
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.reduce_across_ranks = reduce_across_ranks

    def forward(self,
                embedding: Tensor,
                labels: Tensor,
                ignore_index: int = 255,
                generator: Optional[torch.Generator] = None,
                **kwargs) -> Tensor:
        """Loss of a batch of embeddings.

        Args:
            embedding (Tensor): Per-pixel features, shape (B, C, H, W).
            labels (Tensor): Segment ids, shape (B, H, W) (or (B, 1, H, W)), at the embedding's
                resolution; ``ignore_index`` pixels are never drawn.
            ignore_index (int): Ignored label. Defaults to 255.
            generator (torch.Generator, optional): Random generator on the labels' device.
            **kwargs: Ignored (mmseg passes ``weight`` to every decode loss).

        Returns:
            Tensor: Scalar loss, ``loss_weight`` times the mean over contributing images (of all
            processes with ``reduce_across_ranks``).
        """
        if labels.dim() == 4:
            labels = labels.squeeze(1)
        if embedding.dim() != 4 or labels.shape != (embedding.shape[0], *embedding.shape[2:]):
            raise ValueError(
                'NPairL2Loss expects an embedding (B, C, H, W) and labels (B, H, W) of the same '
                f'size, got {tuple(embedding.shape)} and {tuple(labels.shape)}; resize the '
                'labels (nearest) to the embedding first')
        drawn = sample_segment_pixels_batched(labels, self.num_instances, self.num_pixels,
                                              self.num_resamples, ignore_index, generator)
        batch, num_draws, num_points = drawn.index.shape
        channels = embedding.shape[1]
        points = embedding.flatten(2).gather(  # only the drawn pixels, (B, C, R * N)
            2, drawn.index.view(batch, 1, -1).expand(-1, channels, -1))
        points = points.transpose(1, 2).contiguous().view(batch, num_draws, num_points, channels)
        # The pair costs image by image (slices of host-known sizes, no synchronisation): one
        # batched (B, R, N, N) pass would be no faster, and on a CPU it leaves the cache.
        per_image = []
        for b, num_segments in enumerate(drawn.num_segments_list):
            if num_segments < self.min_segments:  # the image does not contribute
                continue
            n = min(num_segments, self.num_instances) * self.num_pixels
            loss = npair_l2_pair_loss(points[b, :, :n], drawn.segment[b, :, :n], self.form,
                                      self.distance_scale, self.temperature, self.pos_weight,
                                      self.neg_weight, self.normalization)
            per_image.append(loss.mean())  # over the draws
        return mean_over_images(per_image, embedding, self.reduce_across_ranks, self.loss_weight)

    @property
    def loss_name(self) -> str:
        """Name of the loss item in the log."""
        return self._loss_name
