# Copyright (c) mmaffseg contributors. All rights reserved.
"""AffinityNet: predicts the semantic affinity of nearby pixel pairs.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

An :class:`~mmseg.models.segmentors.EncoderDecoder` whose decode head is an
:class:`~mmaffseg.models.decode_heads.AffinityHead`. Training (``tools/train.py``) reads the
affinity-label maps (made by :func:`mmaffseg.wsss.affinity_labels.affinity_label_from_cams`)
as ordinary ``gt_sem_seg`` maps: 0 confident background, ``k + 1`` class k, 255 unknown. At
inference the affinities feed :func:`mmaffseg.wsss.random_walk.random_walk_cams`, which needs
the image's CAMs as well; this model therefore has no segmentation ``predict``.
"""
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList
from torch import Tensor


@MODELS.register_module()
class AffinityNet(EncoderDecoder):
    """Backbone + :class:`~mmaffseg.models.decode_heads.AffinityHead`.

    Args:
        **kwargs: :class:`~mmseg.models.segmentors.EncoderDecoder` arguments; ``decode_head``
            must be an ``AffinityHead``.
    """

    def predict_affinity(self, inputs: Tensor) -> Tensor:
        """Pair affinities of images, for the random walk.

        The images are zero-padded at the bottom/right to a multiple of the head's
        ``label_stride`` (8), as the reference, so the grid is ``ceil(H / 8) x ceil(W / 8)``:
        the grid :func:`mmaffseg.wsss.random_walk.random_walk_cams` pools the CAMs to.

        Args:
            inputs (Tensor): Normalised images ``(B, 3, H, W)``.

        Returns:
            Tensor: ``(B, K, P)`` affinities (K = 34 offsets for radius 5, P from-pixels).
        """
        stride = self.decode_head.label_stride
        height, width = inputs.shape[-2:]
        inputs = F.pad(inputs, (0, -width % stride, 0, -height % stride))
        return self.decode_head.predict_affinity(self.extract_feat(inputs))

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None):
        raise NotImplementedError(
            'AffinityNet predicts pair affinities, not a segmentation: call '
            'predict_affinity(images) and mmaffseg.wsss.random_walk.random_walk_cams(cams, '
            'affinities), or run the pseudo-label runner; use val_cfg=None when training it')
