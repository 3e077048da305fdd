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


def _checked(seg_path, img_path, **kwargs):
    results = dict(img_path=str(img_path), seg_map_path=str(seg_path), seg_fields=[],
                   reduce_zero_label=False)
    results = TRANSFORMS.build(dict(type='LoadCheckedImageFromFile'))(results)
    return TRANSFORMS.build(dict(type='LoadCheckedAnnotations', **kwargs))(results)


@pytest.mark.parametrize('bad', [19, 200])
def test_out_of_range_labels_name_file_and_values(tmp_path, bad):
    """19 classes: 0..18 and the ignore index 255 are labels, 19 or 200 are not."""
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((10, 12, 3), np.uint8))
    seg = np.zeros((10, 12), np.uint8)
    seg[0, :3] = 18
    seg[1, :4] = 255
    cv2.imwrite(str(tmp_path / 'ok_label.png'), seg)
    out = _checked(tmp_path / 'ok_label.png', tmp_path / 'a.png', num_classes=19)
    np.testing.assert_array_equal(out['gt_seg_map'], seg)
    seg[2, :5] = bad
    cv2.imwrite(str(tmp_path / 'bad_label.png'), seg)
    with pytest.raises(ValueError, match=rf'bad_label.png has values \[{bad}\] \(5 pixels\) '
                       r'outside the 19 classes 0..18 and not the ignore index 255'):
        _checked(tmp_path / 'bad_label.png', tmp_path / 'a.png', num_classes=19)
    # another ignore index: 255 is then out of range as well
    with pytest.raises(ValueError, match=rf'has values \[{bad}, 255\]'):
        _checked(tmp_path / 'bad_label.png', tmp_path / 'a.png', num_classes=19,
                 ignore_index=254)


def test_one_pixel_high_or_wide_label_maps_load(tmp_path):
    """mmseg squeezes a 1xW, Hx1 or 1x1 map to 1-D / 0-D; the checked loader restores it."""
    for h, w in ((1, 1), (1, 7), (5, 1)):
        cv2.imwrite(str(tmp_path / 'img.png'), np.zeros((h, w, 3), np.uint8))
        seg = (np.arange(h * w) % 3).reshape(h, w).astype(np.uint8)
        cv2.imwrite(str(tmp_path / 'label.png'), seg)
        out = _checked(tmp_path / 'label.png', tmp_path / 'img.png', num_classes=3)
        np.testing.assert_array_equal(out['gt_seg_map'], seg)
    cv2.imwrite(str(tmp_path / 'img.png'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r'label.png has 7 pixel\(s\) .* is 4x4'):
        cv2.imwrite(str(tmp_path / 'label.png'), np.zeros((1, 7), np.uint8))
        _checked(tmp_path / 'label.png', tmp_path / 'img.png')


def test_bad_image_files_are_named(tmp_path):
    load = TRANSFORMS.build(dict(type='LoadCheckedImageFromFile'))
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=r'image .*empty.png: the file is empty \(0 bytes\)'):
        load(dict(img_path=str(empty)))
    garbage = tmp_path / 'garbage.jpg'
    garbage.write_bytes(b'\xff\xd8 not really a jpeg')
    with pytest.raises(ValueError, match=r'garbage.jpg: the file is corrupt, truncated or not'):
        load(dict(img_path=str(garbage)))
    with pytest.raises(ValueError, match=r'nowhere.png: the file does not exist'):
        load(dict(img_path=str(tmp_path / 'nowhere.png')))
    cv2.imwrite(str(tmp_path / 'dot.png'), np.full((1, 1, 3), 9, np.uint8))
    assert load(dict(img_path=str(tmp_path / 'dot.png')))['img'].shape == (1, 1, 3)
    # mmcv's own loader: a bare cv2.error that names nothing
    with pytest.raises(Exception, match='buf.empty') as info:
        TRANSFORMS.build(dict(type='LoadImageFromFile'))(dict(img_path=str(empty)))
    assert 'empty.png' not in str(info.value)
