# Copyright (c) mmaffseg contributors. All rights reserved.
"""Encoder-decoder that predicts per-pixel semantic feature vectors instead of classes.

Aksoy, Oh, Paris, Pollefeys and Matusik, "Semantic Soft Segmentation", ACM Transactions on
Graphics (Proc. SIGGRAPH), 2018: a hypercolumn network trained with a metric loss so that pixels
of one object lie close together.

Training is mmseg's ``EncoderDecoder.loss`` unchanged (the head's ``loss_by_feat`` builds the
segment labels). At inference there are no classes: :meth:`FeatureEmbeddingSegmentor.predict`
returns, per image, ``data_sample.seg_logits`` = ``PixelData(data=embedding)`` with the
embedding of shape (embed_dims, H, W) at the original image size (padding removed, flips undone,
resized bilinearly, exactly as mmseg treats class scores) and **no** ``pred_sem_seg``. Evaluate
it with ``PairRankingMetric``, visualise it with ``tools/visualize_features.py``.
"""
from typing import Optional

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor


@MODELS.register_module()
class FeatureEmbeddingSegmentor(EncoderDecoder):
    """``EncoderDecoder`` for an embedding decode head (e.g. ``HypercolumnHead``).

    Takes exactly ``EncoderDecoder``'s arguments (backbone, decode_head, neck,
    auxiliary_head, train_cfg, test_cfg, data_preprocessor, pretrained, init_cfg).
    """

    def _init_decode_head(self, decode_head) -> None:
        super()._init_decode_head(decode_head)
        if self.out_channels < 2:
            raise ValueError('FeatureEmbeddingSegmentor needs an embedding of at least 2 '
                             f'channels, the decode head has {self.out_channels}')

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """Embedding at the original size as ``seg_logits``; no ``pred_sem_seg``.

        Args:
            seg_logits (Tensor): Embedding (B, embed_dims, H, W) at the network input size.
            data_samples (list[SegDataSample], optional): Samples with their meta info.

        Returns:
            list[SegDataSample]: ``seg_logits.data`` of shape (embed_dims, H_ori, W_ori).
        """
        data_samples = super().postprocess_result(seg_logits, data_samples)
        for sample in data_samples:
            # The parent's argmax over embedding channels means nothing.
            del sample.pred_sem_seg
        return data_samples

    def extract_embedding(self, inputs: Tensor,
                          data_samples: Optional[SampleList] = None) -> Tensor:
        """Embedding of a preprocessed batch at the network input size (test_cfg mode).

        Args:
            inputs (Tensor): Normalised images (B, 3, H, W).
            data_samples (list[SegDataSample], optional): For their meta info.

        Returns:
            Tensor: (B, embed_dims, H, W).
        """
        if data_samples is None:
            metas = [dict(img_shape=inputs.shape[2:], ori_shape=inputs.shape[2:],
                          pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0])] * len(inputs)
        else:
            metas = [s.metainfo for s in data_samples]
        return self.inference(inputs, metas)
