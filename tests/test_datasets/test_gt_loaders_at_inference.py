# Copyright (c) mmaffseg contributors. All rights reserved.
"""mmaffseg's ground-truth loaders pass an inference sample (no label path) through.

mmseg's ``inference_model`` and ``MMSegInferencer`` remove only ``LoadAnnotations`` from a test
pipeline and feed ``dict(img_path=...)`` or ``dict(img=...)``.
"""
import cv2
import numpy as np
import pytest
from mmseg.registry import TRANSFORMS

LOADERS = [
    dict(type='LoadCheckedAnnotations'),
    dict(type='LoadInstanceMap'),
    dict(type='LoadImageLevelLabels', num_classes=8),
]


@pytest.mark.parametrize('loader', LOADERS, ids=lambda c: c['type'])
def test_sample_without_label_path_passes_through(loader, tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((10, 12, 3), 9, np.uint8))
    results = TRANSFORMS.build(dict(type='LoadImageFromFile'))(dict(img_path=str(tmp_path /
                                                                                 'a.png')))
    before = dict(results)
    out = TRANSFORMS.build(loader)(results)
    assert out.keys() == before.keys()
    np.testing.assert_array_equal(out['img'], before['img'])


def test_label_path_none_is_an_error(tmp_path):
    with pytest.raises(ValueError, match='seg_map_path=None'):
        TRANSFORMS.build(dict(type='LoadCheckedAnnotations'))(
            dict(img_path='x.png', seg_map_path=None, seg_fields=[], reduce_zero_label=False))


def test_image_level_labels_still_need_the_map_when_there_is_one():
    with pytest.raises(KeyError, match='put it after LoadAnnotations'):
        TRANSFORMS.build(dict(type='LoadImageLevelLabels', num_classes=8))(
            dict(img_path='x.png', seg_map_path='x_label.png'))
