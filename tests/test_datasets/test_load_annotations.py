# Copyright (c) mmaffseg contributors. All rights reserved.
import cv2
import numpy as np
import pytest
from mmseg.registry import TRANSFORMS


def _pipeline():
    return [TRANSFORMS.build(dict(type='LoadImageFromFile')),
            TRANSFORMS.build(dict(type='LoadCheckedAnnotations'))]


def _run(img_path, seg_path):
    results = dict(img_path=str(img_path), seg_map_path=str(seg_path), seg_fields=[],
                   reduce_zero_label=False)
    for t in _pipeline():
        results = t(results)
    return results


def test_loads_valid_pair(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((10, 12, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'a_label.png'), np.full((10, 12), 7, np.uint8))
    out = _run(tmp_path / 'a.png', tmp_path / 'a_label.png')
    assert out['gt_seg_map'].shape == (10, 12) and (out['gt_seg_map'] == 7).all()
    assert 'gt_seg_map' in out['seg_fields']


def test_corrupt_label_names_file(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((10, 12, 3), np.uint8))
    bad = tmp_path / 'broken_label.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    with pytest.raises(ValueError, match='broken_label.png.*corrupt'):
        _run(tmp_path / 'a.png', bad)


def test_missized_label_names_both_files(tmp_path):
    cv2.imwrite(str(tmp_path / 'img.png'), np.zeros((10, 12, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'small_label.png'), np.zeros((5, 6), np.uint8))
    with pytest.raises(ValueError, match=r'small_label.png is 5x6 but its image .*img.png is '
                       r'10x12'):
        _run(tmp_path / 'img.png', tmp_path / 'small_label.png')
