# Copyright (c) mmaffseg contributors. All rights reserved.
"""Hostile images and label maps met by mmaffseg's loaders: a pixel bomb, 16-bit labels, EXIF
orientation, label maps that are all ignore (docs/datasets.md, "Limits of the loaders")."""
import cv2
import mmcv
import numpy as np
import pytest
from hostile_data import write_16bit_label, write_exif_jpeg, write_png_bomb
from mmseg.registry import TRANSFORMS

import mmaffseg  # noqa: F401
from mmaffseg.datasets import load_annotations
from mmaffseg.utils import DataFileError


def _load(img_path, seg_path=None, image_cfg=None, **label_cfg):
    results = dict(img_path=str(img_path), seg_fields=[], reduce_zero_label=False)
    results = TRANSFORMS.build(dict(type='LoadCheckedImageFromFile', **(image_cfg or {})))(
        results)
    if seg_path is not None:
        results['seg_map_path'] = str(seg_path)
        results = TRANSFORMS.build(dict(type='LoadCheckedAnnotations', **label_cfg))(results)
    return results


def test_pixel_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    """A 30000x30000 PNG of a few MB (0.9 GB decoded, 2.7 GB in colour): refused from its
    header, without decoding, naming the file, its size, the limit and how to raise it."""
    cv2.imwrite(str(tmp_path / 'img.png'), np.zeros((4, 4, 3), np.uint8))
    image = _load(tmp_path / 'img.png')
    bomb = write_png_bomb(str(tmp_path / 'bomb.png'))

    def refuse(*args, **kwargs):
        raise AssertionError('the image was decoded')

    monkeypatch.setattr(mmcv, 'imfrombytes', refuse)
    with pytest.raises(DataFileError, match=r'bomb.png has 900000000 pixels, above the '
                       r'limit of 8388608 \(refused before decoding\).*'
                       r'max_pixels.*MMAFFSEG_MAX_IMAGE_PIXELS'):
        _load(bomb)
    with pytest.raises(DataFileError, match='bomb.png has 900000000 pixels'):  # label map
        TRANSFORMS.build(dict(type='LoadCheckedAnnotations'))(dict(image, seg_map_path=bomb))


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, np.zeros((40, 50, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'a_label.png'), np.zeros((40, 50), np.uint8))
    assert _load(path, image_cfg=dict(max_pixels=2000))['img'].shape == (40, 50, 3)
    with pytest.raises(DataFileError, match=r'a.png has 2000 pixels \(40x50\), above the limit '
                       'of 1999 '):
        _load(path, image_cfg=dict(max_pixels=1999))
    with pytest.raises(DataFileError, match=r'a_label.png has 2000 pixels \(40x50\)'):
        _load(path, tmp_path / 'a_label.png', max_pixels=1999)
    monkeypatch.setenv('MMAFFSEG_MAX_IMAGE_PIXELS', '1999')  # every loader of the process
    with pytest.raises(DataFileError, match='above the limit of 1999'):
        _load(path)
    monkeypatch.setenv('MMAFFSEG_MAX_IMAGE_PIXELS', 'lots')
    with pytest.raises(ValueError, match="MMAFFSEG_MAX_IMAGE_PIXELS must be a positive "
                       "integer .* got 'lots'"):
        _load(path)
    with pytest.raises(ValueError, match='max_pixels must be a positive integer'):
        TRANSFORMS.build(dict(type='LoadCheckedImageFromFile', max_pixels=0))


def test_16bit_label_values_above_255_name_file_and_values(tmp_path):
    """mmseg casts a 16-bit label map to uint8: a stored 259 became class 3, silently."""
    cv2.imwrite(str(tmp_path / 'img.png'), np.zeros((6, 8, 3), np.uint8))
    label = np.full((6, 8), 2, np.uint16)
    label[0, :3] = 259
    label[1, :2] = 511  # 511 % 256 == 255: would have become the ignore index
    write_16bit_label(str(tmp_path / 'deep_label.png'), label)
    with pytest.raises(DataFileError, match=r'deep_label.png has a 16-bit label map holding '
                       r'values beyond 0..255.* \[259, 511\] \(5 pixels\) outside the 19 '
                       r'classes 0..18 and not the ignore index 255'):
        _load(tmp_path / 'img.png', tmp_path / 'deep_label.png', num_classes=19)
    with pytest.raises(DataFileError, match=r'\[259, 511\]'):  # without num_classes too
        _load(tmp_path / 'img.png', tmp_path / 'deep_label.png')
    # a 16-bit map whose values fit is read as they are
    label[:2] = 255
    write_16bit_label(str(tmp_path / 'fits_label.png'), label)
    out = _load(tmp_path / 'img.png', tmp_path / 'fits_label.png', num_classes=19)
    assert out['gt_seg_map'].dtype == np.uint8
    np.testing.assert_array_equal(out['gt_seg_map'], label)


def _picture(h: int, w: int) -> np.ndarray:
    """An RGB picture whose every pixel tells where it is (no symmetry)."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize('orientation', [3, 6])
@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_exif_orientation_is_ignored(tmp_path, orientation, backend):
    """A JPEG tagged "rotate 180" (3) or "rotate 90" (6) decodes to its stored pixel grid, the
    grid its label map is on: mmcv's 'color' decode rotated it (orientation 3: same shape,
    silently misaligned)."""
    stored = _picture(16, 24)
    path = write_exif_jpeg(str(tmp_path / f'o{orientation}.jpg'), stored, orientation)
    grid = cv2.imread(path, cv2.IMREAD_UNCHANGED)  # the stored pixels, BGR
    assert grid.shape == (16, 24, 3)
    label = np.zeros((16, 24), np.uint8)
    label[:8, :12] = 1
    cv2.imwrite(str(tmp_path / 'label.png'), label)
    out = _load(path, tmp_path / 'label.png', image_cfg=dict(imdecode_backend=backend),
                num_classes=2)
    assert out['img'].shape == (16, 24, 3)
    np.testing.assert_array_equal(out['img'], grid)
    np.testing.assert_array_equal(out['gt_seg_map'], label)
    gray = _load(path, image_cfg=dict(color_type='grayscale', imdecode_backend=backend))['img']
    assert gray.shape == (16, 24)


def test_exif_orientation_is_ignored_by_the_other_readers(tmp_path):
    """The CRF's re-read of the image and show_result_pyplot's follow the loaders' policy."""
    from mmaffseg.models.segmentors.crf_refine import CRFRefineSegmentor
    stored = _picture(16, 24)
    path = write_exif_jpeg(str(tmp_path / 'o3.jpg'), stored, 3)
    grid_rgb = cv2.imread(path, cv2.IMREAD_UNCHANGED)[..., ::-1]
    crf_view = CRFRefineSegmentor._read_image(dict(img_path=path), (16, 24))
    np.testing.assert_array_equal(crf_view, grid_rgb)
    from mmaffseg.utils.image_io import read_image  # show_result_pyplot's reader
    np.testing.assert_array_equal(read_image(path, channel_order='rgb'), grid_rgb)


def test_ignore_only_label_warns_once_per_file(tmp_path, monkeypatch):
    """A label map that is all 255 trains nothing: one warning per file, naming it, with the
    count of such files so far."""
    warnings = []
    monkeypatch.setattr(load_annotations, 'print_log',
                        lambda msg, **kwargs: warnings.append(msg), raising=False)
    cv2.imwrite(str(tmp_path / 'img.png'), np.zeros((6, 8, 3), np.uint8))
    for name in ('void_a.png', 'void_b.png'):
        cv2.imwrite(str(tmp_path / name), np.full((6, 8), 255, np.uint8))
    labelled = np.full((6, 8), 255, np.uint8)
    labelled[0, 0] = 4
    cv2.imwrite(str(tmp_path / 'labelled.png'), labelled)
    loader = TRANSFORMS.build(dict(type='LoadCheckedAnnotations', num_classes=19))
    image = _load(tmp_path / 'img.png')
    for name in ('void_a.png', 'labelled.png', 'void_a.png', 'void_b.png', 'void_a.png'):
        loader(dict(image, seg_map_path=str(tmp_path / name), seg_fields=[]))
    assert len(warnings) == 2, warnings
    assert 'void_a.png holds only the ignore index 255' in warnings[0]
    assert '(1 such label map(s) met so far)' in warnings[0]
    assert 'void_b.png' in warnings[1] and '(2 such label map(s)' in warnings[1]
