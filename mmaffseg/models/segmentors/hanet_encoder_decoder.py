# Copyright (c) mmaffseg contributors. All rights reserved.
"""EncoderDecoder that hands HANet the absolute row position of every input row.

Reference:
    Sungha Choi, Joanne T. Kim, Jaegul Choo. "Cars Can't Fly up in the Sky: Improving
    Urban-Scene Segmentation via Height-driven Attention Networks". CVPR 2020.

mmseg's ``EncoderDecoder`` gives the metainfo to the decode head but not to the neck, and its
sliding-window inference crops windows without telling anyone where they are. This subclass

- passes the row positions (computed from the metainfo, see
  :mod:`mmaffseg.ops.row_positions`) to a neck that declares
  ``uses_row_positions`` (e.g. :class:`~mmaffseg.models.necks.HANetNeck`), and
- in sliding-window inference computes the positions of the whole image once and gives each
  window its own slice as ``row_positions`` in the window's metainfo.

Without HANet modules it behaves exactly like ``EncoderDecoder``.
"""
from typing import Iterator, List, Optional, Tuple

import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from ...ops.row_positions import batch_row_positions


def sliding_windows(height: int, width: int, crop: Tuple[int, int],
                    stride: Tuple[int, int]) -> Iterator[Tuple[int, int, int, int]]:
    """The windows ``(y1, y2, x1, x2)`` of mmseg's sliding-window inference, in its order.

    The last window of each row/column is shifted back to end at the border; windows never
    exceed the image (a crop larger than the image gives one window covering it).

    Args:
        height (int): Image height.
        width (int): Image width.
        crop (tuple[int, int]): Window ``(h, w)``.
        stride (tuple[int, int]): Step ``(h, w)`` between windows.
    """
    (h_crop, w_crop), (h_stride, w_stride) = crop, stride
    rows = max(height - h_crop + h_stride - 1, 0) // h_stride + 1
    cols = max(width - w_crop + w_stride - 1, 0) // w_stride + 1
    for row in range(rows):
        for col in range(cols):
            y2 = min(row * h_stride + h_crop, height)
            x2 = min(col * w_stride + w_crop, width)
            yield max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2


@MODELS.register_module()
class HANetEncoderDecoder(EncoderDecoder):
    """:class:`~mmseg.models.segmentors.EncoderDecoder` with absolute row positions.

    Takes the same arguments as ``EncoderDecoder``.
    """

    def extract_feat(self,
                     inputs: Tensor,
                     batch_img_metas: Optional[List[dict]] = None) -> List[Tensor]:
        """Backbone (and neck) features; a position-aware neck gets the row positions.

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)``.
            batch_img_metas (list[dict], optional): Metainfo of each sample.
        """
        x = self.backbone(inputs)
        if self.with_neck:
            if getattr(self.neck, 'uses_row_positions', False):
                row_positions = None
                if batch_img_metas is not None:
                    row_positions = batch_row_positions(batch_img_metas, inputs.shape[2],
                                                        inputs.device)
                x = self.neck(x, row_positions)
            else:
                x = self.neck(x)
        return x

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        x = self.extract_feat(inputs, batch_img_metas)
        return self.decode_head.predict(x, batch_img_metas, self.test_cfg)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        x = self.extract_feat(inputs, [sample.metainfo for sample in data_samples])
        losses = self._decode_head_forward_train(x, data_samples)
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        return losses

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        metas = None if data_samples is None else [s.metainfo for s in data_samples]
        x = self.extract_feat(inputs, metas)
        if getattr(self.decode_head, 'uses_row_positions', False) and metas is not None:
            return self.decode_head.forward(
                x, batch_row_positions(metas, inputs.shape[2], inputs.device))
        return self.decode_head.forward(x)

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Sliding-window inference; each window's metainfo carries its ``row_positions``.

        Args:
            inputs (Tensor): Images ``(B, 3, H, W)``.
            batch_img_metas (list[dict]): Metainfo of each image.

        Returns:
            Tensor: Averaged logits ``(B, out_channels, H, W)``.
        """
        height, width = inputs.shape[2:]
        positions = batch_row_positions(batch_img_metas, height)  # (B, H) or None
        logits = inputs.new_zeros((inputs.shape[0], self.out_channels, height, width))
        counts = inputs.new_zeros((inputs.shape[0], 1, height, width))
        for y1, y2, x1, x2 in sliding_windows(height, width, self.test_cfg.crop_size,
                                              self.test_cfg.stride):
            window = inputs[:, :, y1:y2, x1:x2]
            # torch.Size img_shape tells BaseDecodeHead.predict_by_feat to resize to the window
            metas = [
                dict(meta, img_shape=window.shape[2:], pad_shape=tuple(window.shape[2:]),
                     row_positions=None if positions is None else positions[i, y1:y2])
                for i, meta in enumerate(batch_img_metas)
            ]
            logits += F.pad(self.encode_decode(window, metas),
                            (x1, width - x2, y1, height - y2))
            counts[:, :, y1:y2, x1:x2] += 1
        return logits / counts
