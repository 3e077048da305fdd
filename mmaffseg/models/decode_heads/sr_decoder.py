# Copyright (c) mmaffseg contributors. All rights reserved.
"""Single image super-resolution (SISR) decoder of DSRL.

Reference:
    Li Wang, Dong Li, Yousong Zhu, Lu Tian, Yi Shan. "Dual Super-Resolution Learning for
    Semantic Segmentation". CVPR 2020.

The decoder reads the encoder features that the segmentation head also reads (the network input
is the downsampled image) and reconstructs the image at the ORIGINAL, higher resolution:

    selected encoder maps --1x1 conv each--> resize to the finest --concat--> 3x3 conv
    --> upsampling stages (pixel shuffle / deconv / interpolation + conv, x2 each by default)
    --> 3x3 conv to the image channels

It is a training-only auxiliary branch: ``DSRLEncoderDecoder`` never runs it at inference.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from ..layers.upsample_stage import PIXEL_SHUFFLE_CFG, RELU_CFG, UpsampleStage


def _as_tuple(value: Union[int, Sequence[int]]) -> Tuple[int, ...]:
    return (value, ) if isinstance(value, int) else tuple(value)


@MODELS.register_module()
class SRDecoder(BaseModule):
    """Reconstruct the full-resolution image from encoder features (DSRL's SISR branch).

    Args:
        in_channels (int | Sequence[int]): Channels of each selected encoder output.
        in_index (int | Sequence[int]): Which encoder (backbone or neck) outputs to read, as
            many as ``in_channels``. Defaults to -1 (the last one).
        channels (int): Channels after the lateral 1x1 convs and the fusion conv.
            Defaults to 64.
        upsample_channels (Sequence[int]): Output channels of each upsampling stage; the last
            one is the channel count of the features handed to the FA loss.
            Defaults to (64, 32, 16).
        upsample_scales (int | Sequence[int]): Upsampling factor of each stage (one int for
            all). Their product should take the finest selected map to the original image size,
            e.g. 8 from stride-4 features of a x0.5 input. Defaults to 2.
        upsample_cfg (dict): Layer of each stage, see
            :func:`mmaffseg.models.layers.upsample_stage.build_learned_upsample`.
            Defaults to ``dict(type='pixel_shuffle', upsample_kernel=3)``.
        num_convs_per_stage (int): 3x3 conv blocks after each upsampling layer. Defaults to 1.
        out_channels (int): Channels of the reconstructed image. Defaults to 3.
        conv_cfg (dict, optional): Conv config. Defaults to None.
        norm_cfg (dict, optional): Norm config, e.g. ``dict(type='SyncBN')``. Defaults to None.
        act_cfg (dict): Activation config. Defaults to ``dict(type='ReLU')``.
        align_corners (bool): ``align_corners`` of the bilinear resizes. Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 in_index: Union[int, Sequence[int]] = -1,
                 channels: int = 64,
                 upsample_channels: Sequence[int] = (64, 32, 16),
                 upsample_scales: Union[int, Sequence[int]] = 2,
                 upsample_cfg: ConfigType = PIXEL_SHUFFLE_CFG,
                 num_convs_per_stage: int = 1,
                 out_channels: int = 3,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 act_cfg: ConfigType = RELU_CFG,
                 align_corners: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = _as_tuple(in_channels)
        self.in_index = _as_tuple(in_index)
        if len(self.in_channels) != len(self.in_index):
            raise ValueError(f'SRDecoder needs one in_channels entry per in_index entry, got '
                             f'in_channels={self.in_channels} and in_index={self.in_index}.')
        if len(upsample_channels) == 0:
            raise ValueError('SRDecoder needs at least one upsampling stage '
                             '(upsample_channels is empty).')
        scales = _as_tuple(upsample_scales)
        if len(scales) == 1:
            scales = scales * len(upsample_channels)
        if len(scales) != len(upsample_channels):
            raise ValueError(f'upsample_scales must be one int or one per stage, got '
                             f'{upsample_scales} for {len(upsample_channels)} stages.')
        self.upsample_scales = scales
        self.align_corners = align_corners

        self.lateral_convs = nn.ModuleList([
            ConvModule(c, channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for c in self.in_channels
        ])
        self.fusion_conv = ConvModule(
            channels * len(self.in_channels), channels, 3, padding=1, conv_cfg=conv_cfg,
            norm_cfg=norm_cfg, act_cfg=act_cfg)
        stages = []
        stage_in = channels
        for stage_out, scale in zip(upsample_channels, scales):
            stages.append(
                UpsampleStage(stage_in, stage_out, scale, upsample_cfg, num_convs_per_stage,
                              conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg))
            stage_in = stage_out
        self.upsample_stages = nn.Sequential(*stages)
        self.feat_channels = stage_in
        self.to_image = nn.Conv2d(stage_in, out_channels, 3, padding=1)

    def _select_inputs(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        selected = []
        for expected, index in zip(self.in_channels, self.in_index):
            x = inputs[index]
            if x.shape[1] != expected:
                raise ValueError(
                    f'SRDecoder expects {expected} channels from encoder output {index}, got '
                    f'{x.shape[1]}. Set sr_decoder in_channels/in_index to match the backbone '
                    f'(or neck) outputs.')
            selected.append(x)
        return selected

    def forward(self,
                inputs: Sequence[Tensor],
                out_size: Optional[Tuple[int, int]] = None) -> Tuple[Tensor, Tensor]:
        """Reconstruct the image.

        Args:
            inputs (Sequence[Tensor]): Encoder outputs, e.g. a backbone's stage maps.
            out_size (tuple[int, int], optional): Size (H, W) to resize the outputs to
                (bilinear; a no-op when the stages already produce it). Defaults to None.

        Returns:
            tuple[Tensor, Tensor]: The image (B, out_channels, H, W) and the features of the
            last upsampling stage (B, feat_channels, H, W) it is projected from.
        """
        selected = self._select_inputs(inputs)
        size = max((x.shape[2:] for x in selected), key=lambda s: s[0] * s[1])
        laterals = [
            resize(conv(x), size=size, mode='bilinear', align_corners=self.align_corners)
            for conv, x in zip(self.lateral_convs, selected)
        ]
        feats = self.upsample_stages(self.fusion_conv(torch.cat(laterals, dim=1)))
        if out_size is not None and tuple(feats.shape[2:]) != tuple(out_size):
            self._check_scale(size, feats.shape[2:], out_size)
            feats = resize(feats, size=out_size, mode='bilinear',
                           align_corners=self.align_corners)
        return self.to_image(feats), feats

    def _check_scale(self, in_size, produced, out_size) -> None:
        """Only rounding may separate the stages' output from ``out_size``, not a whole stage."""
        ratios = [o / p for o, p in zip(out_size, produced)]
        if all(2 / 3 < r < 1.5 for r in ratios):
            return
        needed = [o / i for o, i in zip(out_size, in_size)]
        raise ValueError(
            f'SRDecoder upsampling stages (scales {self.upsample_scales}) turn the '
            f'{in_size[0]}x{in_size[1]} encoder map into {produced[0]}x{produced[1]}, but the '
            f'image to reconstruct is {out_size[0]}x{out_size[1]} (x{needed[0]:.3g}). Change '
            f'upsample_channels / upsample_scales so that their product matches.')
