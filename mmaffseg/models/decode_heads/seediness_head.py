# Copyright (c) mmaffseg contributors. All rights reserved.
"""Classification / seediness head: which class would the mask grown from this pixel have?

Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance Segmentation via
Deep Metric Learning", arXiv:1703.10277, 2017.

For every similarity threshold ``tau`` (default 0.25, 0.5, 0.75, 0.9) the head predicts, at
every pixel ``p``, a (C+1)-way distribution ``C_tau(p, c)`` over background (``c = 0``) and the
C object classes: the class of the mask ``m(p, tau) = {q : sigma(p, q) >= tau}`` grown from
``p`` in the embedding. Training targets
(:func:`~mmaffseg.instance_embedding.targets.seed_class_targets`): the class of the ground
truth instance that ``m(p, tau)`` overlaps with IoU above ``iou_thr``, background otherwise,
computed at the points sampled for the embedding loss; softmax cross-entropy there.

At inference the seediness of a pixel is ``S_p = max over tau and object classes of
C_tau(p, c)`` (:meth:`SeedinessHead.seediness`), and a chosen seed takes the tau and class of
that maximum (:meth:`SeedinessHead.seed_predictions`).
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class SeedinessHead(FCNHead):
    """One (C+1)-way classifier per similarity threshold, on shared convolutions.

    ``forward`` returns logits of shape (B, T, C+1, h, w) (T thresholds; class 0 is background).
    Trained by :class:`~mmaffseg.models.segmentors.InstanceEmbeddingSegmentor`, which grows the
    masks the targets need from the embedding; on its own it has no ``loss``/``predict``.

    Args:
        num_classes (int): Number C of object classes (background excluded).
        taus (Sequence[float]): Similarity thresholds, each in (0, 1]. Defaults to
            (0.25, 0.5, 0.75, 0.9).
        num_convs (int): Convolutions before the classifiers. Defaults to 2.
        concat_input (bool): As in ``FCNHead``. Defaults to False.
        loss_decode (dict, optional): Classification loss on (N, C+1) logits. Defaults to
            ``dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)``.
        **kwargs: The remaining ``FCNHead`` / ``BaseDecodeHead`` arguments (``in_channels``,
            ``channels``, ``in_index``, ``input_transform``, ``norm_cfg``, ``dropout_ratio``...).
    """

    def __init__(self,
                 num_classes: int,
                 taus: Sequence[float] = (0.25, 0.5, 0.75, 0.9),
                 num_convs: int = 2,
                 concat_input: bool = False,
                 loss_decode: Optional[dict] = None,
                 **kwargs) -> None:
        if 'out_channels' in kwargs:
            raise ValueError('SeedinessHead sets its output size from num_classes and taus; '
                             'remove out_channels from its config')
        if num_classes < 1:
            raise ValueError(f'SeedinessHead num_classes must be >= 1, got {num_classes}')
        taus = tuple(float(t) for t in taus)
        if not taus or any(not 0 < t <= 1 for t in taus):
            raise ValueError(f'SeedinessHead taus must be a non-empty list of values in (0, 1], '
                             f'got {taus}')
        out = len(taus) * (num_classes + 1)
        super().__init__(
            num_convs=num_convs,
            concat_input=concat_input,
            num_classes=out,
            loss_decode=loss_decode or dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            **kwargs)
        self.num_classes = num_classes  # object classes; the output has T * (C + 1) channels
        self.register_buffer('taus', torch.tensor(taus), persistent=False)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """Logits of shape (B, T, C+1, h, w)."""
        logits = self.cls_seg(self._forward_feature(inputs))
        return logits.unflatten(1, (len(self.taus), self.num_classes + 1))

    def loss(self, *args, **kwargs):
        """Not available: the targets need the embedding (see the class docstring)."""
        raise NotImplementedError(
            'SeedinessHead is trained by InstanceEmbeddingSegmentor (its targets are masks '
            'grown in the embedding); use it as that segmentor\'s seediness_head')

    predict = loss

    def loss_by_feat(self, seg_logits: Tensor, points: List[Optional[Tensor]],
                     targets: List[Optional[Tensor]]) -> dict:
        """Cross-entropy of every classifier at the sampled points.

        Args:
            seg_logits (Tensor): Logits (B, T, C+1, h, w).
            points (list[Tensor | None]): Per image the flat indices (S,) of the points.
            targets (list[Tensor | None]): Per image the (T, S) targets from
                :func:`~mmaffseg.instance_embedding.targets.seed_class_targets`.

        Returns:
            dict[str, Tensor]: ``{loss_name: loss}`` averaged over all points and thresholds
            (an exact 0 connected to the logits when no image has points).
        """
        logits, labels = [], []
        for img_logits, index, target in zip(seg_logits, points, targets):
            if index is None:
                continue
            at_points = img_logits.flatten(2)[:, :, index]  # (T, C+1, S)
            logits.append(at_points.transpose(1, 2).flatten(0, 1))  # (T * S, C+1)
            labels.append(target.flatten())
        if logits:
            loss = self.loss_decode(torch.cat(logits), torch.cat(labels),
                                    ignore_index=self.ignore_index)
        else:
            loss = seg_logits.sum() * 0.0
        return {self.loss_decode.loss_name: loss}

    @staticmethod
    def seediness(probs: Tensor) -> Tensor:
        """``S_p`` = max over thresholds and object classes of the probabilities.

        Args:
            probs (Tensor): Softmax probabilities (B, T, C+1, ...).

        Returns:
            Tensor: (B, ...).
        """
        return probs[:, :, 1:].flatten(1, 2).amax(1)

    def seed_predictions(self, probs: Tensor, seeds: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Threshold, class and confidence of each seed: the arg max behind its seediness.

        Args:
            probs (Tensor): Softmax probabilities (B, T, C+1, P) (flattened pixels).
            seeds (Tensor): Flat seed indices (B, N).

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``tau`` (B, N) float, ``label`` (B, N) int64 class
            index 0..C-1 and ``score`` (B, N) float.
        """
        num_taus, num_cls = probs.shape[1], probs.shape[2] - 1
        index = seeds[:, None, None].expand(-1, num_taus, num_cls, -1)
        at_seeds = probs[:, :, 1:].gather(3, index)  # (B, T, C, N)
        score, arg = at_seeds.flatten(1, 2).max(1)  # (B, N)
        return self.taus.to(probs)[arg // num_cls], arg % num_cls, score
