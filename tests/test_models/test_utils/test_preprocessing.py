# Copyright (c) mmaffseg contributors. All rights reserved.
"""Undoing mmseg's own SegDataPreProcessor gives back the loaded image, in RGB."""
import pytest
import torch
from mmengine.model import BaseDataPreprocessor
from mmengine.structures import PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.structures import SegDataSample

from mmaffseg.models.utils.preprocessing import (
    converts_channels,
    sample_padding,
    to_rgb,
    unnormalize,
    unpad,
)

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _preprocess(pre, img, training):
    sample = SegDataSample(gt_sem_seg=PixelData(data=torch.zeros(1, *img.shape[1:]).long()))
    out = pre(dict(inputs=[img], data_samples=[sample]), training)
    return out['inputs'][0], out['data_samples'][0].metainfo


@pytest.mark.parametrize('bgr_to_rgb', [True, False])
@pytest.mark.parametrize('training', [True, False])
def test_undo_seg_data_preprocessor(bgr_to_rgb, training):
    gen = torch.Generator().manual_seed(0)
    bgr = torch.randint(0, 256, (3, 13, 10), generator=gen, dtype=torch.uint8)  # mmcv order
    pre = SegDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=bgr_to_rgb, size=(16, 16),
                              pad_val=0, seg_pad_val=255, test_cfg=dict(size=(16, 16)))
    inputs, meta = _preprocess(pre, bgr, training)
    assert inputs.shape[-2:] == (16, 16) and sum(sample_padding(meta)) == 3 + 6
    image = to_rgb(unpad(unnormalize(inputs, pre), meta), pre)
    torch.testing.assert_close(image, bgr.flip(0).float(), atol=1e-3, rtol=0)


def test_no_normalisation_no_conversion_no_padding():
    pre = BaseDataPreprocessor()
    x = torch.rand(3, 4, 5)
    assert unnormalize(x, pre) is x and not converts_channels(pre)
    assert unpad(x, {}).shape == x.shape and sample_padding({}) == (0, 0, 0, 0)
    # without a conversion setting, a preprocessed image is the loader's BGR: flipped to RGB
    torch.testing.assert_close(to_rgb(x, pre), x.flip(0))


def test_packed_loader_image_follows_the_pseudo_label_loop():
    x = torch.rand(3, 4, 5)
    flips = SegDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=True)
    keeps = SegDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=False)
    torch.testing.assert_close(to_rgb(x, flips, preprocessed=False), x.flip(0))
    torch.testing.assert_close(to_rgb(x, keeps, preprocessed=False), x)
    torch.testing.assert_close(to_rgb(x, BaseDataPreprocessor(), preprocessed=False), x.flip(0))
    with pytest.raises(ValueError, match='expects a'):
        to_rgb(torch.rand(4, 5), flips)
