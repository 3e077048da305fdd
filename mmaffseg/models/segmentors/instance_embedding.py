# Copyright (c) mmaffseg contributors. All rights reserved.
"""Instance segmentation by deep metric learning: embedding + seediness on one backbone.

Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance Segmentation via
Deep Metric Learning", arXiv:1703.10277, 2017.

Training (:meth:`InstanceEmbeddingSegmentor.loss`), at the heads' output resolution (ground
truth resized there with nearest neighbours):

1. The features of the image pyramid ``train_cfg.scales`` (see below) feed both heads;
   ``EmbeddingHead`` embeds every pixel; ``InstanceEmbeddingLoss`` draws K points per instance
   (background included) and applies its weighted logistic pair loss ``L_e``.
2. From the same points, the masks ``m(p, tau)`` are grown in the (detached) embedding and
   labelled with the class of the GT instance they overlap with IoU > ``iou_thr`` (else
   background); ``SeedinessHead`` is trained with softmax cross-entropy ``L_cls`` there.
3. The loss is ``L_e + lambda * L_cls``; ``lambda`` is the attribute ``cls_loss_weight``, ramped
   from 0 to 0.2 during training by :class:`~mmaffseg.engine.LossWeightRampHook`.

Inference (:meth:`InstanceEmbeddingSegmentor.predict`), batched and device-agnostic:
seediness ``S_p = max_{tau, c} C_tau(p, c)``; up to ``num_seeds`` seeds chosen greedily by
``log S_p + alpha log min D`` (:func:`~mmaffseg.instance_embedding.seed_selection.select_seeds`);
the similarities of all seeds to all pixels in one matrix product; each seed's mask is
``sigma >= tau`` at its best tau, resized to the original image first, with the class and
confidence of that tau (optionally, not in the paper, masks overlapping a better one by more
than ``test_cfg.mask_nms_thr`` IoU are dropped). Every data sample gets

- ``pred_instances`` (``InstanceData``): ``masks`` (n, H, W) bool, ``labels`` (n,) int64 (index
  into ``thing_class_ids``), ``scores`` (n,), sorted by decreasing score;
- ``pred_instance_map`` (``PixelData``, (1, H, W) int64): 0 = no instance, ``i + 1`` where the
  highest-scoring mask covering the pixel is instance ``i``;
- the meta information ``thing_class_ids``, the semantic class of each label, so that
  :class:`~mmaffseg.visualization.AffSegLocalVisualizer` names the instances' classes.

The image pyramid (the paper's, scales 0.25, 0.5, 1 and 2, in training and inference): with
``train_cfg.scales`` / ``test_cfg.scales`` the input is resized by each factor and run
through the feature extractor (backbone + neck); every feature map is resized (bilinear) back
to its size at scale 1, the maps are averaged level by level, and the average feeds both heads
once (:meth:`InstanceEmbeddingSegmentor.pyramid_features`; at test time
``test_cfg.scale_fusion='features'``, the default). ``scale_fusion='outputs'`` (ours, not the
paper's, inference only) instead runs both heads at every scale and averages the embeddings and
the seediness probabilities at the size of the scale-1 outputs. The default ``scales=(1.0,)``
is a single pass.

Length (~340 lines): one segmentor's training and inference paths; the algorithms they call
(seed selection, targets, mask NMS) are in :mod:`mmaffseg.instance_embedding`.
"""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData, PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList
from torch import Tensor

from ...instance_embedding.mask_nms import mask_nms
from ...instance_embedding.seed_selection import select_seeds
from ...instance_embedding.targets import seed_class_targets
from ...ops.embedding_similarity import similarity
from ...ops.pairwise import pairwise_squared_distances
from ...structures.instance_map import instance_classes, stack_instance_maps
from ..decode_heads.embedding_head import resize_label_maps
from ..utils.preprocessing import sample_padding

_TRAIN_DEFAULTS = dict(iou_thr=0.5, scales=(1.0, ))
_TEST_DEFAULTS = dict(
    mode='whole', num_seeds=100, alpha=0.3, score_thr=0.0, mask_chunk=16, scales=(1.0, ),
    scale_fusion='features', mask_nms_thr=None)
_SCALE_FUSIONS = ('features', 'outputs')


@MODELS.register_module()
class InstanceEmbeddingSegmentor(EncoderDecoder):
    """Backbone (+ neck) shared by an ``EmbeddingHead`` and a ``SeedinessHead``.

    Args:
        backbone (dict): Backbone config.
        decode_head (dict): ``EmbeddingHead`` config.
        seediness_head (dict): ``SeedinessHead`` config; ``num_classes`` must equal
            ``len(thing_class_ids)``.
        thing_class_ids (Sequence[int]): Semantic labels (in ``gt_sem_seg``) of the object
            classes, in the order of the seediness classes, e.g. Cityscapes' thing trainIds
            ``(11, ..., 18)``.
        neck (dict, optional): Neck config. Defaults to None.
        cls_loss_weight (float): lambda, the weight of the classification loss (set each
            iteration by ``LossWeightRampHook`` when configured). Defaults to 0.2.
        train_cfg (dict, optional): ``iou_thr`` (default 0.5) for the seediness targets;
            ``scales`` ((1.0,)): the image pyramid whose averaged features the heads are
            trained on, as ``test_cfg.scales``.
        test_cfg (dict, optional): ``mode`` (only ``'whole'``), ``num_seeds`` (100),
            ``alpha`` (0.3), ``score_thr`` (0: keep every seed), ``mask_chunk`` (16: masks
            resized to the original size this many at a time, bounding memory), ``scales``
            ((1.0,): the input scales of the pyramid; must include 1.0, e.g.
            ``(0.25, 0.5, 1.0, 2.0)`` for the paper's), ``scale_fusion`` (``'features'``: the
            paper's, the extracted features of all scales are averaged at their scale-1 size
            and fed to both heads; ``'outputs'``: ours, the heads' outputs of all scales are
            averaged), ``mask_nms_thr`` (None: off,
            as in the paper; else masks overlapping a higher-scoring kept mask with IoU above
            it are dropped, compared at the heads' resolution, see
            :func:`~mmaffseg.instance_embedding.mask_nms`).
        data_preprocessor (dict, optional): ``SegDataPreProcessor`` config.
        pretrained (str, optional): Backbone checkpoint. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
        auxiliary_head (None): Not supported; accepted as None so that a config built on an
            mmseg model with an auxiliary head can drop it with ``auxiliary_head=None``.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 seediness_head: ConfigType,
                 thing_class_ids: Sequence[int],
                 neck: OptConfigType = None,
                 cls_loss_weight: float = 0.2,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None,
                 auxiliary_head: None = None) -> None:
        if auxiliary_head is not None:
            raise ValueError('InstanceEmbeddingSegmentor has no auxiliary head, got '
                             f'auxiliary_head={auxiliary_head!r}: set auxiliary_head=None (in a '
                             'config, model=dict(auxiliary_head=None))')
        train_cfg = {**_TRAIN_DEFAULTS, **(train_cfg or {})}
        test_cfg = {**_TEST_DEFAULTS, **(test_cfg or {})}
        if test_cfg['mode'] != 'whole':
            raise ValueError('InstanceEmbeddingSegmentor supports only test_cfg.mode="whole" '
                             f'(seeds are chosen over the whole image), got {test_cfg["mode"]!r}')
        nms_thr = test_cfg['mask_nms_thr']
        if nms_thr is not None and not 0 < nms_thr <= 1:
            raise ValueError('InstanceEmbeddingSegmentor test_cfg.mask_nms_thr must be None (no '
                             f'NMS) or an IoU in (0, 1], got {nms_thr}')
        for name, cfg in (('train_cfg', train_cfg), ('test_cfg', test_cfg)):
            cfg['scales'] = tuple(float(f) for f in cfg['scales'])
            if 1.0 not in cfg['scales'] or min(cfg['scales']) <= 0:
                raise ValueError(
                    f'InstanceEmbeddingSegmentor {name}.scales must be positive and include '
                    f'1.0 (every scale is averaged at its size at scale 1), got '
                    f'{cfg["scales"]}')
        if test_cfg['scale_fusion'] not in _SCALE_FUSIONS:
            raise ValueError('InstanceEmbeddingSegmentor test_cfg.scale_fusion must be one of '
                             f'{_SCALE_FUSIONS}, got {test_cfg["scale_fusion"]!r}')
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            pretrained=pretrained,
            init_cfg=init_cfg)
        self.seediness_head = MODELS.build(seediness_head)
        self.thing_class_ids = tuple(int(c) for c in thing_class_ids)
        if len(self.thing_class_ids) != self.seediness_head.num_classes:
            raise ValueError(
                f'thing_class_ids has {len(self.thing_class_ids)} classes but the seediness head '
                f'predicts {self.seediness_head.num_classes}; set seediness_head.num_classes to '
                'the number of thing classes')
        self.num_classes = self.seediness_head.num_classes
        self.cls_loss_weight = float(cls_loss_weight)

    def head_outputs(self, inputs: Tensor, scales: Optional[Sequence[float]] = None):
        """Embedding (B, d, h, w) and seediness logits (B, T, C+1, h, w) of the images.

        The network's raw outputs (also ``forward(inputs, mode='tensor')``), for analysis tools:
        the heads on the features of the pyramid ``scales`` (averaged as in training), so that
        they see the features they were trained on.

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            scales (Sequence[float], optional): The pyramid; ``(1.0,)`` for one pass.
                Default: ``test_cfg.scales``.
        """
        scales = self.test_cfg['scales'] if scales is None else scales
        return self._heads_from_features(self.pyramid_features(inputs, scales))

    def _heads_from_features(self, x: Sequence[Tensor]):
        """Both heads on extracted features ``x``."""
        embedding = self.decode_head(x)  # (B, d, h, w)
        logits = self.seediness_head(x)  # (B, T, C+1, h, w)
        if logits.shape[-2:] != embedding.shape[-2:]:
            raise ValueError(f'the embedding ({tuple(embedding.shape[-2:])}) and seediness '
                             f'({tuple(logits.shape[-2:])}) heads must output the same size; '
                             'give them the same in_index / input_transform')
        return embedding, logits

    def _scaled(self, inputs: Tensor, factor: float) -> Tensor:
        """The images resized (bilinear) by ``factor``."""
        return self._resize(inputs, tuple(max(1, round(n * factor)) for n in inputs.shape[-2:]))

    def pyramid_features(self, inputs: Tensor, scales: Sequence[float]) -> list:
        """The paper's multi-scale features: the feature extractor (backbone + neck) on the
        images resized by each factor of ``scales`` (which include 1.0), every map resized
        (bilinear) to its size at scale 1, averaged level by level."""
        feats = list(self.extract_feat(inputs))
        others = [f for f in scales if f != 1.0]
        if not others:
            return feats
        for factor in others:
            scaled = self.extract_feat(self._scaled(inputs, factor))
            feats = [f + self._resize(g, f.shape[-2:]) for f, g in zip(feats, scaled)]
        return [f / (len(others) + 1) for f in feats]

    def _multi_scale_outputs(self, inputs: Tensor):
        """Embedding (B, d, h, w) and seediness probabilities (B, T, C+1, h, w) over the
        pyramid ``test_cfg.scales``, fused as ``test_cfg.scale_fusion`` says."""
        if self.test_cfg['scale_fusion'] == 'features':
            # The paper: average the extracted features over the pyramid, then the heads once.
            embedding, logits = self._heads_from_features(
                self.pyramid_features(inputs, self.test_cfg['scales']))
            return embedding, logits.softmax(2)
        others = [f for f in self.test_cfg['scales'] if f != 1.0]
        # Ours: average the heads' outputs at the size of the scale-1 outputs.
        embedding, logits = self.head_outputs(inputs, scales=(1.0, ))
        probs = logits.softmax(2)
        size = embedding.shape[-2:]
        for factor in others:
            emb, lgt = self.head_outputs(self._scaled(inputs, factor), scales=(1.0, ))
            embedding = embedding + self._resize(emb, size)
            probs = probs + self._resize(lgt.softmax(2).flatten(1, 2), size).view_as(probs)
        num = len(others) + 1
        return embedding / num, probs / num

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None):
        """Raw outputs: embedding (B, d, h, w) and seediness logits (B, T, C+1, h, w) of the
        heads on the features of the pyramid ``test_cfg.scales`` (what FLOP counters run)."""
        return self.head_outputs(inputs)

    def gt_maps_at(self, data_samples: SampleList, size) -> Tuple[Tensor, Tensor]:
        """Instance and semantic ground truth of a batch, (B, h, w) each, resized (nearest
        neighbour) to the heads' output ``size``."""
        inst = resize_label_maps(
            stack_instance_maps(data_samples, self.decode_head.ignore_index), size)
        sem = resize_label_maps(
            torch.stack([s.gt_sem_seg.data[0] for s in data_samples]).long(), size)
        return inst, sem

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """``L_e`` and ``lambda * L_cls`` of a batch (see the module docstring).

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            data_samples (list[SegDataSample]): With ``gt_sem_seg`` and ``gt_instance_map``.

        Returns:
            dict[str, Tensor]: The two losses and ``cls_weight`` (lambda, logged only).
        """
        embedding, logits = self._heads_from_features(
            self.pyramid_features(inputs, self.train_cfg['scales']))
        ignore = self.decode_head.ignore_index
        inst, sem = self.gt_maps_at(data_samples, embedding.shape[-2:])
        points = self.decode_head.sample_points(inst)
        losses = self.decode_head.loss_by_feat(embedding, data_samples, inst, points)

        detached = embedding.detach()
        index = [None if p is None else p[0] for p in points]
        targets = [
            None if idx is None else seed_class_targets(
                emb, m, instance_classes(m, s, self.thing_class_ids, ignore), idx,
                self.seediness_head.taus, self.train_cfg['iou_thr'], ignore)
            for emb, m, s, idx in zip(detached, inst, sem, index)
        ]
        cls_losses = self.seediness_head.loss_by_feat(logits, index, targets)
        for name, value in cls_losses.items():
            losses[name] = self.cls_loss_weight * value
        losses['cls_weight'] = embedding.new_tensor(self.cls_loss_weight)
        return losses

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Instances of a batch (see the module docstring for the outputs).

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            data_samples (list[SegDataSample], optional): With their meta information.

        Returns:
            list[SegDataSample]: With ``pred_instances`` and ``pred_instance_map``.
        """
        if data_samples is None:
            data_samples = [
                SegDataSample(metainfo=dict(
                    ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:],
                    pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0]))
                for _ in inputs
            ]
        metas = [s.metainfo for s in data_samples]
        embedding, probs = self._multi_scale_outputs(inputs)
        batch, _, h, w = embedding.shape
        pixels = embedding.flatten(2).transpose(1, 2)  # (B, P, d)
        probs = probs.flatten(3)  # (B, T, C+1, P)

        valid = embedding.new_zeros((batch, h, w), dtype=torch.bool)
        for i, meta in enumerate(metas):
            _, right, _, bottom = sample_padding(meta)
            valid[i, :-(-(inputs.shape[2] - bottom) * h // inputs.shape[2]),
                  :-(-(inputs.shape[3] - right) * w // inputs.shape[3])] = True
        cfg = self.test_cfg
        seeds, found = select_seeds(pixels, self.seediness_head.seediness(probs),
                                    valid.flatten(1), cfg['num_seeds'], cfg['alpha'])
        taus, labels, scores = self.seediness_head.seed_predictions(probs, seeds)
        seed_emb = pixels.gather(1, seeds[..., None].expand(-1, -1, pixels.shape[-1]))
        sim = similarity(pairwise_squared_distances(seed_emb, pixels))  # (B, N, P)
        sim = sim.view(batch, -1, h, w)

        for i, (sample, meta) in enumerate(zip(data_samples, metas)):
            keep = found[i] & (scores[i] >= cfg['score_thr'])
            if cfg['mask_nms_thr'] is not None:
                grown = sim[i].flatten(1) >= taus[i][:, None]  # (N, h * w)
                keep[keep.clone()] = mask_nms(grown[keep], scores[i][keep], cfg['mask_nms_thr'])
            order = scores[i][keep].argsort(descending=True)
            masks = self._masks_at_original_size(sim[i][keep][order], taus[i][keep][order],
                                                 meta, inputs.shape[2:])
            nonempty = masks.flatten(1).any(1)
            masks = masks[nonempty]
            sample.pred_instances = InstanceData(
                masks=masks,
                labels=labels[i][keep][order][nonempty],
                scores=scores[i][keep][order][nonempty])
            sample.pred_instance_map = PixelData(data=self._instance_map(masks)[None])
            # names the labels' classes for visualisers (AffSegLocalVisualizer)
            sample.set_metainfo(dict(thing_class_ids=self.thing_class_ids))
        return data_samples

    def _masks_at_original_size(self, sim: Tensor, taus: Tensor, meta: dict,
                                input_size) -> Tensor:
        """Similarity maps (n, h, w) -> bool masks (n, H_ori, W_ori), as mmseg maps logits."""
        left, right, top, bottom = sample_padding(meta)
        ori_shape = tuple(meta['ori_shape'][:2])
        height, width = input_size
        out = []
        for start in range(0, sim.shape[0], self.test_cfg['mask_chunk']):
            chunk = self._resize(sim[None, start:start + self.test_cfg['mask_chunk']],
                                 tuple(input_size))
            chunk = chunk[..., top:height - bottom, left:width - right]
            if meta.get('flip', False):
                chunk = chunk.flip(3 if meta.get('flip_direction') == 'horizontal' else 2)
            chunk = self._resize(chunk, ori_shape)[0]
            out.append(chunk >= taus[start:start + chunk.shape[0], None, None])
        if not out:
            return sim.new_zeros((0, *ori_shape), dtype=torch.bool)
        return torch.cat(out)

    def _resize(self, maps: Tensor, size: tuple) -> Tensor:
        """Bilinear resize of (B, n, h, w) maps; a no-op at the same size."""
        if tuple(maps.shape[-2:]) == tuple(size):
            return maps
        return resize(maps, size=size, mode='bilinear', align_corners=self.align_corners,
                      warning=False)

    @staticmethod
    def _instance_map(masks: Tensor) -> Tensor:
        """(n, H, W) masks sorted by decreasing score -> (H, W) ids, the first mask wins."""
        if masks.shape[0] == 0:
            return torch.zeros(masks.shape[1:], dtype=torch.long, device=masks.device)
        covered = masks.any(0)
        first = masks.to(torch.uint8).argmax(0) + 1
        return torch.where(covered, first, torch.zeros_like(first))
