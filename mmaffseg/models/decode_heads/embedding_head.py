# Copyright (c) mmaffseg contributors. All rights reserved.
"""Per-pixel instance embedding head.

Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance Segmentation via
Deep Metric Learning", arXiv:1703.10277, 2017: every pixel gets a ``d``-dimensional vector
(``d = 64``) such that pixels of one instance lie close together, trained with
:class:`~mmaffseg.models.losses.InstanceEmbeddingLoss`.

The head is mmseg's ``FCNHead`` (a stack of ``ConvModule``) whose last 1x1 convolution outputs
``embed_dims`` channels instead of class scores.
"""
from typing import List, Optional

import torch.nn.functional as F
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

from ...structures.instance_map import stack_instance_maps


def resize_label_maps(labels: Tensor, size) -> Tensor:
    """Nearest-neighbour resize of integer maps (B, H, W) to ``size`` (h, w)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=tuple(size), mode='nearest')[:, 0].long()


@MODELS.register_module()
class EmbeddingHead(FCNHead):
    """``num_convs`` convolutions then a 1x1 projection to a ``embed_dims`` embedding.

    Args:
        embed_dims (int): Embedding size d. Defaults to 64.
        num_convs (int): Convolutions before the projection. Defaults to 2.
        concat_input (bool): Concatenate the input to the convolutions' output before the
            projection, as in ``FCNHead``. Defaults to False.
        dropout_ratio (float): Dropout before the projection. Defaults to 0 (noise on the
            features is noise on every distance).
        loss_decode (dict): The metric loss; must provide ``sample_points`` and accept
            ``(embedding, instance_maps, points, ignore_index=...)``. Defaults to
            ``dict(type='InstanceEmbeddingLoss')``.
        **kwargs: The remaining ``FCNHead`` / ``BaseDecodeHead`` arguments (``in_channels``,
            ``channels``, ``kernel_size``, ``in_index``, ``input_transform``, ``norm_cfg``,
            ``act_cfg``, ``align_corners``, ``ignore_index``, ``init_cfg``...).
            ``num_classes`` is ``embed_dims`` and must not be given.
    """

    def __init__(self,
                 embed_dims: int = 64,
                 num_convs: int = 2,
                 concat_input: bool = False,
                 dropout_ratio: float = 0.0,
                 loss_decode: Optional[dict] = None,
                 **kwargs) -> None:
        if 'num_classes' in kwargs or 'out_channels' in kwargs:
            raise ValueError('EmbeddingHead sets its output size with embed_dims; remove '
                             'num_classes / out_channels from its config')
        if embed_dims < 1:
            raise ValueError(f'EmbeddingHead embed_dims must be >= 1, got {embed_dims}')
        super().__init__(
            num_convs=num_convs,
            concat_input=concat_input,
            dropout_ratio=dropout_ratio,
            num_classes=embed_dims,
            loss_decode=loss_decode or dict(type='InstanceEmbeddingLoss'),
            **kwargs)
        self.embed_dims = embed_dims

    def sample_points(self, instance_maps: Tensor) -> list:
        """Points of every image for the metric loss (and for the seediness targets).

        Args:
            instance_maps (Tensor): Instance ids (B, h, w) at the embedding's size.

        Returns:
            list[tuple[Tensor, Tensor] | None]: Per image ``(flat index, instance id)``.
        """
        return self.loss_decode.sample_points(instance_maps, self.ignore_index)

    def loss_by_feat(self,
                     seg_logits: Tensor,
                     batch_data_samples: SampleList,
                     instance_maps: Optional[Tensor] = None,
                     points: Optional[List] = None) -> dict:
        """Metric loss of the embedding against the instances of each image.

        Args:
            seg_logits (Tensor): Embedding (B, embed_dims, h, w).
            batch_data_samples (list[SegDataSample]): With ``gt_instance_map``; only read when
                ``instance_maps`` is not given.
            instance_maps (Tensor, optional): Instance ids (B, h, w) at the embedding's size.
            points (list, optional): Points from :meth:`sample_points`; drawn when omitted.

        Returns:
            dict[str, Tensor]: ``{loss_name: loss}``.
        """
        if instance_maps is None:
            instance_maps = resize_label_maps(
                stack_instance_maps(batch_data_samples, self.ignore_index),
                seg_logits.shape[-2:])
        loss = self.loss_decode(seg_logits, instance_maps, points,
                                ignore_index=self.ignore_index)
        return {self.loss_decode.loss_name: loss}
