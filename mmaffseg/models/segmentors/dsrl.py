# Copyright (c) mmaffseg contributors. All rights reserved.
"""DSRL: dual super-resolution learning around any mmseg encoder-decoder.

Reference:
    Li Wang, Dong Li, Yousong Zhu, Lu Tian, Yi Shan. "Dual Super-Resolution Learning for
    Semantic Segmentation". CVPR 2020.

The network sees the image downsampled by ``downsample_factor`` (default x0.5) and must still
segment it at the original resolution. Three parts around an unchanged backbone + decode head:

- SSSR (semantic segmentation super-resolution): the head's logits are upsampled to the ORIGINAL
  image size and trained with the head's own loss against the full-resolution ground truth.
  Bilinear by default (no parameters); a learned pixel-shuffle / deconv layer on request.
- SISR (single image super-resolution, training only): :class:`SRDecoder` reconstructs the
  original image from the same encoder features; MSE against the image (``loss_sr``).
- FA (feature affinity, training only): a 1x1 conv + BN + ReLU "feature transform" maps the
  SISR features to the channels of the SSSR output, and :class:`FeatureAffinityLoss` makes
  the pairwise similarity structure of the SSSR output follow that of the SISR features, over
  the unpadded positions of each sample only (the same ``img_shape`` mask as the SISR MSE).

Total loss: ``L = L_seg (+ aux) + 0.1 * L_sr + 1.0 * L_fa`` (weights in ``loss_sr`` /
``loss_fa``). Inference runs downsample -> backbone (-> neck) -> decode head -> SSSR only: the
SISR decoder and the feature transform are never called, and :meth:`drop_training_branches`
(or ``sr_decoder=None`` in a test config) removes their parameters.

SISR target: ``inputs`` are what ``SegDataPreProcessor`` produced, i.e. ``(img - mean) / std``
(after its optional BGR->RGB swap), zero-padded at the bottom/right up to the batch size. The
target undoes the normalisation with the preprocessor's own ``mean`` / ``std`` buffers, giving
the image in the pipeline's pixel range (0-255 for 8-bit images, colour order as fed to the
network), multiplies it by ``sr_target_scale`` (1/255 -> [0, 1]), and masks out the padding
using each sample's ``img_shape``.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import (
    ConfigType,
    OptConfigType,
    OptMultiConfig,
    OptSampleList,
    SampleList,
    add_prefix,
)
from torch import Tensor

from ..layers.sssr_upsample import SSSRUpsample
from ..losses.feature_affinity_loss import subsample_stride
from ..utils.preprocessing import unnormalize

DOWNSAMPLE_MODES = ('bilinear', 'bicubic', 'area', 'nearest')
FA_SR_SOURCES = ('features', 'image')
# Default configs (module constants, never modified: they are copied before use).
FEATURE_TRANSFORM_CFG = dict(norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))
LOSS_SR_CFG = dict(type='ReconstructionMSELoss', loss_weight=0.1)
LOSS_FA_CFG = dict(type='FeatureAffinityLoss', subsample_factor=1 / 8, loss_weight=1.0)


@MODELS.register_module()
class DSRLEncoderDecoder(EncoderDecoder):
    """Encoder-decoder trained with dual super-resolution learning (DSRL).

    Takes the full-resolution batch from the data preprocessor, downsamples it inside the model,
    and predicts at the full resolution. Any backbone / neck / decode head config works; the
    decode head's ``forward`` and ``loss_by_feat`` are used (heads that need more than that in
    training, e.g. point sampling, are not supported).

    Args:
        backbone (dict): Backbone config.
        decode_head (dict): Decode head config; its loss is applied to the SSSR output.
        sr_decoder (dict, optional): SISR decoder config (e.g. ``dict(type='SRDecoder', ...)``).
            ``None`` builds neither SISR nor FA: the SSSR-only model, also the lean test/export
            model. Defaults to None.
        neck (dict, optional): Neck config. Defaults to None.
        auxiliary_head (dict | list[dict], optional): Auxiliary head config(s); their losses
            are computed against the full-resolution ground truth. Defaults to None.
        downsample_factor (float): Network input size over original size, in (0, 1].
            Defaults to 0.5.
        downsample_mode (str): Interpolation that downsamples the batch: 'bilinear' (x0.5 with
            align_corners=False averages each 2x2 cell), 'bicubic', 'area' or 'nearest'.
            Defaults to 'bilinear'.
        sssr_upsample_cfg (dict, optional): Learned SSSR layer, see :class:`SSSRUpsample`.
            Defaults to None (bilinear).
        feature_transform (dict): Config of the FA feature transform, a 1x1 ConvModule from
            the SISR side to the SSSR output channels: keys ``norm_cfg``, ``act_cfg`` (and
            optionally ``in_channels`` / ``out_channels``, checked against the model).
            Defaults to ``dict(norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))``.
        fa_sr_source (str): SISR tensor the FA loss compares: 'features' (the decoder's last
            upsampling stage) or 'image' (the reconstruction). Defaults to 'features'.
        loss_sr (dict): Reconstruction loss config.
            Defaults to ``dict(type='ReconstructionMSELoss', loss_weight=0.1)``.
        loss_fa (dict, optional): FA loss config; ``None`` disables FA (SSSR + SISR only).
            Defaults to ``dict(type='FeatureAffinityLoss', subsample_factor=1 / 8,
            loss_weight=1.0)``.
        sr_target_scale (float): Multiplies the un-normalised image to form the SISR target.
            Defaults to 1 / 255.
        train_cfg (dict, optional): Training config. Defaults to None.
        test_cfg (dict, optional): Test config (``mode='whole'`` or ``'slide'``; crop sizes are
            in ORIGINAL-resolution pixels). Defaults to None.
        data_preprocessor (dict, optional): Data preprocessor config. Defaults to None.
        pretrained (str, optional): Backbone checkpoint. Defaults to None.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 sr_decoder: OptConfigType = None,
                 neck: OptConfigType = None,
                 auxiliary_head: OptConfigType = None,
                 downsample_factor: float = 0.5,
                 downsample_mode: str = 'bilinear',
                 sssr_upsample_cfg: OptConfigType = None,
                 feature_transform: ConfigType = FEATURE_TRANSFORM_CFG,
                 fa_sr_source: str = 'features',
                 loss_sr: ConfigType = LOSS_SR_CFG,
                 loss_fa: OptConfigType = LOSS_FA_CFG,
                 sr_target_scale: float = 1 / 255,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            pretrained=pretrained,
            init_cfg=init_cfg)
        if not 0 < downsample_factor <= 1:
            raise ValueError(f'downsample_factor must be in (0, 1] (0.5 halves the input), got '
                             f'{downsample_factor}.')
        if downsample_mode not in DOWNSAMPLE_MODES:
            raise ValueError(f'downsample_mode must be one of {DOWNSAMPLE_MODES}, got '
                             f'{downsample_mode!r}.')
        if fa_sr_source not in FA_SR_SOURCES:
            raise ValueError(f'fa_sr_source must be one of {FA_SR_SOURCES}, got '
                             f'{fa_sr_source!r}.')
        self.downsample_factor = downsample_factor
        self.downsample_mode = downsample_mode
        self.fa_sr_source = fa_sr_source
        self.sr_target_scale = sr_target_scale
        self.sssr = SSSRUpsample(self.out_channels, 1 / downsample_factor, sssr_upsample_cfg,
                                 self.align_corners)

        self.sr_decoder = None
        self.feature_transform = None
        self.loss_sr = None
        self.loss_fa = None
        if sr_decoder is not None:
            self.sr_decoder = MODELS.build(sr_decoder)
            self.loss_sr = MODELS.build(loss_sr)
            if loss_fa is not None:
                self.loss_fa = MODELS.build(loss_fa)
                self.feature_transform = self._build_feature_transform(feature_transform)
                self._check_fa_crop_size()

    def _build_feature_transform(self, cfg: ConfigType) -> nn.Module:
        cfg = dict(cfg)
        in_channels = self.sr_decoder.feat_channels
        if self.fa_sr_source == 'image':
            in_channels = self.sr_decoder.to_image.out_channels
        for key, actual, what in (('in_channels', in_channels, f'SISR {self.fa_sr_source}'),
                                  ('out_channels', self.out_channels, 'SSSR output')):
            given = cfg.pop(key, actual)
            if given != actual:
                raise ValueError(
                    f'feature_transform {key}={given} does not match the {what} channels '
                    f'({actual}): the FA feature transform maps the SISR {self.fa_sr_source} to '
                    f'the channels of the SSSR output (the decode head out_channels). Remove '
                    f'{key} from feature_transform or set it to {actual}.')
        return ConvModule(in_channels, self.out_channels, 1, **cfg)

    def _check_fa_crop_size(self) -> None:
        """Fail at build time when the preprocessor's fixed size cannot be FA-subsampled."""
        size = getattr(self.data_preprocessor, 'size', None)
        factor = getattr(self.loss_fa, 'subsample_factor', None)
        if size is None or factor is None:
            return
        stride = subsample_stride(factor)
        if size[0] % stride or size[1] % stride:
            raise ValueError(
                f'loss_fa subsample_factor=1/{stride} needs the original-resolution crop to be '
                f'divisible by {stride}, but data_preprocessor.size={tuple(size)}. Change the '
                f'crop size or subsample_factor.')

    @property
    def with_sisr(self) -> bool:
        """Whether the model has the (training-only) SISR branch."""
        return self.sr_decoder is not None

    @property
    def with_fa(self) -> bool:
        """Whether the model has the (training-only) FA loss and feature transform."""
        return self.feature_transform is not None

    def drop_training_branches(self) -> 'DSRLEncoderDecoder':
        """Delete the SISR decoder and the FA feature transform (for export or testing).

        Returns:
            DSRLEncoderDecoder: ``self``, now with only backbone, neck, heads and SSSR.
        """
        self.sr_decoder = None
        self.feature_transform = None
        self.loss_sr = None
        self.loss_fa = None
        return self

    def network_input_size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        """Size (h, w) the network sees for an original-resolution size (H, W)."""
        factor = self.downsample_factor
        # a traced size is a tensor: keep it one, so an exported graph stays dynamic
        return tuple(
            max(1, int(s * factor + 0.5)) if isinstance(s, int) else
            torch.floor(s * factor + 0.5).clamp(min=1).long() for s in size)

    def downsample(self, inputs: Tensor) -> Tensor:
        """(B, C, H, W) full-resolution batch -> (B, C, h, w) network input."""
        size = self.network_input_size(inputs.shape[2:])
        if tuple(size) == tuple(inputs.shape[2:]):
            return inputs
        align = False if self.downsample_mode in ('bilinear', 'bicubic') else None
        return F.interpolate(inputs, size=size, mode=self.downsample_mode, align_corners=align)

    def _encode(self, inputs: Tensor) -> Tuple[List[Tensor], Tensor]:
        """Encoder features of the downsampled input and the SSSR logits at ``inputs`` size."""
        net_inputs = self.downsample(inputs)
        feats = self.extract_feat(net_inputs)
        seg_logits = self.decode_head.forward(feats)
        return feats, self.sssr(seg_logits, net_inputs.shape[2:], inputs.shape[2:])

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Segmentation logits at the size of ``inputs`` (test path: no SISR, no FA)."""
        return self._encode(inputs)[1]

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        """Tensor-mode forward: the SSSR logits at the size of ``inputs``."""
        return self._encode(inputs)[1]

    def sr_target(self, inputs: Tensor) -> Tensor:
        """The un-normalised image scaled by ``sr_target_scale`` (see module docstring)."""
        return unnormalize(inputs, self.data_preprocessor) * self.sr_target_scale

    @staticmethod
    def valid_mask(inputs: Tensor, data_samples: SampleList) -> Tensor:
        """(B, 1, H, W) mask that is 1 inside each sample's unpadded ``img_shape``."""
        mask = inputs.new_zeros((inputs.shape[0], 1) + tuple(inputs.shape[2:]))
        for i, sample in enumerate(data_samples):
            height, width = sample.metainfo.get('img_shape', inputs.shape[2:])[:2]
            mask[i, :, :height, :width] = 1
        return mask

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of a batch: decode (+ aux) on the SSSR output, SISR MSE and FA.

        Args:
            inputs (Tensor): Full-resolution preprocessed batch (B, 3, H, W).
            data_samples (list[:obj:`SegDataSample`]): Samples with full-resolution
                ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: Loss items (``decode.*``, ``aux.*``, ``dsrl.loss_sr``,
            ``dsrl.loss_fa``).
        """
        feats, sssr_logits = self._encode(inputs)
        losses = dict()
        losses.update(
            add_prefix(self.decode_head.loss_by_feat(sssr_logits, data_samples), 'decode'))
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(feats, data_samples))
        if not self.with_sisr:
            return losses

        sr_image, sr_feats = self.sr_decoder(feats, out_size=inputs.shape[2:])
        valid_mask = self.valid_mask(inputs, data_samples)  # padding counts in neither loss
        dsrl_losses = {
            self.loss_sr.loss_name: self.loss_sr(sr_image, self.sr_target(inputs), valid_mask)
        }
        if self.with_fa:
            sr_side = sr_feats if self.fa_sr_source == 'features' else sr_image
            dsrl_losses[self.loss_fa.loss_name] = self.loss_fa(
                sssr_logits, self.feature_transform(sr_side), valid_mask=valid_mask)
        losses.update(add_prefix(dsrl_losses, 'dsrl'))
        return losses
