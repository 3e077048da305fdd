# Copyright (c) mmaffseg contributors. All rights reserved.
"""ColorJitter against torchvision's ColorJitter semantics written out naively (torchvision is
not installed here): PIL's blends and luma, the HSV hue rotation, the factor ranges, the random
order, and mmcv's BGR images."""
import colorsys

import numpy as np
import pytest
from mmseg.registry import TRANSFORMS

import mmaffseg  # noqa: F401
from mmaffseg.datasets.color_jitter import ColorJitter


def _luma(rgb):
    """ITU-R 601-2 luma, PIL's convert('L')."""
    rgb = rgb.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _blend(degenerate, rgb, factor):
    """PIL's Image.blend(degenerate, img, factor): clipped, truncated to uint8."""
    out = degenerate + factor * (rgb.astype(np.float64) - degenerate)
    return np.floor(np.clip(out, 0, 255)).astype(np.uint8)


def naive_brightness(rgb, f):
    return _blend(0., rgb, f)


def naive_contrast(rgb, f):
    return _blend(float(int(_luma(rgb).mean() + 0.5)), rgb, f)


def naive_saturation(rgb, f):
    return _blend(np.round(_luma(rgb))[..., None], rgb, f)


def naive_hue(rgb, f):
    shift = int(f * 255) / 255  # torchvision shifts the uint8 hue channel by uint8(255 f)
    out = np.empty_like(rgb)
    for idx in np.ndindex(rgb.shape[:2]):
        h, s, v = colorsys.rgb_to_hsv(*(rgb[idx] / 255.))
        out[idx] = [round(c * 255) for c in colorsys.hsv_to_rgb((h + shift) % 1., s, v)]
    return out


NAIVE = (naive_brightness, naive_contrast, naive_saturation, naive_hue)


def _image(seed=0, size=(24, 20)):
    return np.random.default_rng(seed).integers(0, 256, size + (3, ), dtype=np.uint8)


@pytest.mark.parametrize('which', range(3))
@pytest.mark.parametrize('factor', [0.7, 0.93, 1.3])
def test_blends_match_the_formulas(which, factor):
    rgb = _image(which)
    factors = [None] * 4
    factors[which] = factor
    got = ColorJitter.apply(rgb, range(4), factors, channel_order='rgb')
    diff = np.abs(got.astype(int) - NAIVE[which](rgb, factor))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.97  # float32 vs float64 truncation


@pytest.mark.parametrize('factor', [-0.1, -0.04, 0.07, 0.1])
def test_hue_matches_the_hsv_rotation(factor):
    rgb = _image(3, (16, 16))
    got = ColorJitter.apply(rgb, range(4), [None, None, None, factor], channel_order='rgb')
    diff = np.abs(got.astype(int) - naive_hue(rgb, factor))
    assert diff.mean() < 1.5 and diff.max() <= 10  # PIL's HSV is 8-bit
    # a third of the circle turns pure red into pure green, pure green into pure blue
    prim = np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8)
    rotated = ColorJitter.apply(prim, range(4), [None, None, None, 1 / 3], channel_order='rgb')
    assert rotated.tolist() == [[[0, 255, 0], [0, 0, 255]]]


def test_bgr_images_are_jittered_in_rgb():
    """mmcv loads BGR: the jitter must act on the RGB colours (luma weights, hue)."""
    rgb = _image(4)
    for factors in ([None, None, 0.5, None], [None, None, None, 0.1]):
        from_rgb = ColorJitter.apply(rgb, range(4), factors, channel_order='rgb')
        from_bgr = ColorJitter.apply(rgb[..., ::-1].copy(), range(4), factors)
        np.testing.assert_array_equal(from_bgr[..., ::-1], from_rgb)
        swapped = ColorJitter.apply(rgb[..., ::-1].copy(), range(4), factors,
                                    channel_order='rgb')[..., ::-1]
        assert np.abs(swapped.astype(int) - from_rgb).mean() > 1  # the mistake is visible


def test_psa_recipe_sampling_order_and_composition():
    """ColorJitter(0.3, 0.3, 0.3, 0.1): factors in torchvision's ranges, every order occurs,
    and the result is the naive adjustments applied in the sampled order."""
    t = TRANSFORMS.build(dict(type='ColorJitter', brightness=0.3, contrast=0.3,
                              saturation=0.3, hue=0.1))
    rng_state = np.random.get_state()
    try:
        np.random.seed(0)
        orders, factors = set(), []
        for _ in range(300):
            order, f = t.sample()
            orders.add(tuple(order))
            factors.append(f)
        factors = np.array(factors)
        assert len(orders) == 24
        assert (factors[:, :3] >= 0.7).all() and (factors[:, :3] <= 1.3).all()
        assert (np.abs(factors[:, 3]) <= 0.1).all()
        assert factors[:, :3].min() < 0.71 and factors[:, :3].max() > 1.29
        rgb = _image(5, (12, 10))
        for seed in range(3):
            np.random.seed(seed)
            order, f = t.sample()
            np.random.seed(seed)
            got = t(dict(img=rgb[..., ::-1].copy()))['img'][..., ::-1]
            expected = rgb
            for i in order:
                expected = NAIVE[i](expected, f[i])
            diff = np.abs(got.astype(int) - expected)
            assert diff.mean() < 1.5 and diff.max() <= 12, (order, f)
    finally:
        np.random.set_state(rng_state)


def test_bad_arguments_and_images():
    with pytest.raises(ValueError, match='hue must be in'):
        ColorJitter(hue=0.6)
    with pytest.raises(ValueError, match='brightness must be >= 0'):
        ColorJitter(brightness=-1)
    with pytest.raises(ValueError, match='uint8 \\(H, W, 3\\) image'):
        ColorJitter(brightness=0.3)(dict(img=np.zeros((4, 4, 3), np.float32)))
    # nothing to do: the image is unchanged
    img = _image(6)
    np.testing.assert_array_equal(ColorJitter()(dict(img=img.copy()))['img'], img)
