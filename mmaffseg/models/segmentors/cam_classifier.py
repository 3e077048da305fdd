# Copyright (c) mmaffseg contributors. All rights reserved.
"""CAM classifier: the first network of the PSA weakly supervised pipeline.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

An :class:`~mmseg.models.segmentors.EncoderDecoder` whose decode head is a
:class:`~mmaffseg.models.decode_heads.CAMHead`: it trains with ``tools/train.py`` on image-level
labels (``gt_class_labels`` of each data sample, see the head) and predicts a CAM segmentation,
so that mmseg's ``IoUMetric`` measures CAM quality during validation.
"""
import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ..decode_heads.cam_head import stack_class_labels


@MODELS.register_module()
class CAMClassifier(EncoderDecoder):
    """Multi-label classifier with CAM outputs.

    Prediction (``predict``): CAMs at the input size, each class divided by its maximum
    (+1e-5), absent classes zeroed when the samples carry ``gt_class_labels`` (and
    ``test_cfg.use_class_labels``, default True), and a constant background score
    ``test_cfg.bg_score`` (default 0.2, as the reference's CAM evaluation) prepended. The
    argmax is then 0 for background and ``k + 1`` for class k: the label space of a dataset
    whose class 0 is background (PASCAL VOC: 20 CAM classes, 21 segmentation classes).

    Args:
        **kwargs: :class:`~mmseg.models.segmentors.EncoderDecoder` arguments; ``decode_head``
            must be a ``CAMHead`` (or provide ``forward_cam``).
    """

    def forward_cam(self, inputs: Tensor) -> Tensor:
        """Images ``(B, 3, H, W)`` -> CAMs ``(B, num_classes, h, w)`` at the feature stride.

        The ``cam_fn`` of :func:`mmaffseg.wsss.cam.multi_scale_cam`.
        """
        return self.decode_head.forward_cam(self.extract_feat(inputs))

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """CAM segmentation (see the class docstring) as ``pred_sem_seg``."""
        if data_samples is None:
            shape = inputs.shape[2:]
            metas = [dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                          padding_size=[0, 0, 0, 0])] * inputs.shape[0]
        else:
            metas = [sample.metainfo for sample in data_samples]
        cams = self.inference(inputs, metas)  # (B, C, H, W)
        if (data_samples is not None and self.test_cfg.get('use_class_labels', True)
                and all('gt_class_labels' in s for s in data_samples)):
            labels = stack_class_labels(data_samples, cams.shape[1], cams.device)
            cams = cams * labels[:, :, None, None]
        cams = cams / (cams.amax(dim=(2, 3), keepdim=True) + 1e-5)
        bg = torch.full_like(cams[:, :1], self.test_cfg.get('bg_score', 0.2))
        return self.postprocess_result(torch.cat([bg, cams], dim=1), data_samples)
