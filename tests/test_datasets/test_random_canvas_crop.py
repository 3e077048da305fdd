# Copyright (c) mmaffseg contributors. All rights reserved.
"""RandomCanvasCrop is PSA's imutils.RandomCrop: same placement for the same random integers,
on every combination of longer / shorter / equal axes, for the image and the label maps."""
import numpy as np
import pytest
from psa_crop_reference import official_random_crop

from mmaffseg.datasets import RandomCanvasCrop


class _Draws:
    """Stand-in for the transform's random integers: a local generator, each draw recorded."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.drawn = []

    def __call__(self, space: int) -> int:
        value = int(self.rng.integers(0, space + 1))
        self.drawn.append(value)
        return value


def _crop_with_draws(crop: RandomCanvasCrop, results: dict, seed: int):
    draws = _Draws(seed)
    crop._draw_offset = draws
    out = crop(results)
    h_draw, w_draw = draws.drawn
    return out, h_draw, w_draw


@pytest.mark.parametrize('shape', [(30, 50), (17, 17), (12, 40), (40, 9), (17, 25), (5, 3)])
def test_same_placement_as_the_reference(shape):
    rng = np.random.default_rng(sum(shape))
    crop = RandomCanvasCrop(17, img_pad_val=0, seg_pad_val=255)
    for seed in range(20):
        img = rng.integers(0, 256, shape + (3, ), dtype=np.uint8)
        seg = rng.integers(0, 21, shape, dtype=np.uint8)
        out, h_draw, w_draw = _crop_with_draws(
            crop, dict(img=img.copy(), gt_seg_map=seg.copy(), seg_fields=['gt_seg_map']), seed)
        expected = official_random_crop(img, 17, h_draw, w_draw)
        np.testing.assert_array_equal(out['img'], expected)
        assert out['img'].dtype == np.uint8 and out['img_shape'] == (17, 17)
        # the label map is placed alike, 255 on the canvas
        inside = official_random_crop(np.ones(shape + (1, ), np.float32), 17, h_draw, w_draw)
        label = official_random_crop(seg[..., None], 17, h_draw, w_draw)[..., 0]
        label[inside[..., 0] == 0] = 255
        np.testing.assert_array_equal(out['gt_seg_map'], label)
        # the offsets say where the content is
        top, left = out['canvas_offset']
        assert out['crop_offset'] == (-top if shape[0] <= 17 else h_draw,
                                      -left if shape[1] <= 17 else w_draw)


def test_small_images_land_anywhere_in_the_canvas():
    """With the transform's own random numbers (numpy's, seeded and restored here), a 10-row
    image in a 40-row crop starts at every row 0..30, about uniformly (the reference's
    ``randrange(31)``), not always at the top."""
    crop = RandomCanvasCrop((40, 8))
    state = np.random.get_state()
    try:
        np.random.seed(0)
        tops = [crop(dict(img=np.zeros((10, 8, 3), np.uint8)))['canvas_offset'][0]
                for _ in range(3100)]
    finally:
        np.random.set_state(state)
    counts = np.bincount(tops, minlength=31)
    assert len(counts) == 31 and (counts > 50).all() and counts.max() < 150  # ~100 each


def test_fractional_pad_values_make_an_exact_float_canvas():
    mean_bgr = (103.53, 116.28, 123.675)
    crop = RandomCanvasCrop(6, img_pad_val=mean_bgr)
    crop._draw_offset = lambda space: space  # bottom / right of the canvas
    img = np.full((4, 3, 3), 7, np.uint8)
    out = crop(dict(img=img))
    assert out['img'].dtype == np.float32
    np.testing.assert_array_equal(out['img'][:2, :3], np.broadcast_to(
        np.float32(mean_bgr), (2, 3, 3)))
    np.testing.assert_array_equal(out['img'][2:, 3:], 7)
    assert out['canvas_offset'] == (2, 3) and out['crop_offset'] == (-2, -3)
    # integer pad values keep the image's dtype; crop offsets compose
    out = RandomCanvasCrop(2, img_pad_val=(1, 2, 3))(dict(img=img, crop_offset=(10, 20)))
    assert out['img'].dtype == np.uint8
    top, left = out['crop_offset']
    assert 10 <= top <= 12 and 20 <= left <= 21


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ValueError, match='crop_size must be a positive int'):
        RandomCanvasCrop((0, 4))
    with pytest.raises(ValueError, match='img_pad_val has 2 values for an image with 3'):
        RandomCanvasCrop(4, img_pad_val=(1, 2))(dict(img=np.zeros((2, 2, 3), np.uint8)))
    with pytest.raises(ValueError, match='gt_seg_map is 3x2 but the image is 2x2'):
        RandomCanvasCrop(4)(dict(img=np.zeros((2, 2, 3), np.uint8), seg_fields=['gt_seg_map'],
                                 gt_seg_map=np.zeros((3, 2), np.uint8)))
