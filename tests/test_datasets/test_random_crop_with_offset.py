# Copyright (c) mmaffseg contributors. All rights reserved.
"""RandomCropWithOffset records where each crop lies, and the row positions computed from the
packed metainfo equal the official position map carried through resize, crop and flip."""
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope

from mmaffseg.datasets import RandomCropWithOffset
from mmaffseg.ops import row_positions_from_meta

META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
             'flip', 'flip_direction', 'reduce_zero_label', 'crop_offset')


def _sample(height, width, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    # the official position map: original row // 8 of a 1024-row frame -> 128 bins
    rows = (np.arange(height) * 128 // height).astype(np.uint8)
    seg = np.repeat(rows[:, None], width, axis=1)
    return dict(img=img, gt_seg_map=seg, seg_fields=['gt_seg_map'], img_shape=(height, width),
                ori_shape=(height, width))


def test_offset_locates_the_crop():
    crop = RandomCropWithOffset(crop_size=(23, 31))
    for seed in range(5):
        np.random.seed(seed)
        results = _sample(70, 90, seed)
        original = results['img'].copy()
        out = crop(results)
        top, left = out['crop_offset']
        np.testing.assert_array_equal(out['img'], original[top:top + 23, left:left + 31])
        assert out['img_shape'] == (23, 31)


def test_offsets_compose_and_small_images():
    np.random.seed(0)
    out = RandomCropWithOffset((40, 50))(_sample(60, 80))
    first = out['crop_offset']
    full = _sample(60, 80)['img']
    out = RandomCropWithOffset((10, 10))(out)
    top, left = out['crop_offset']
    assert top >= first[0] and left >= first[1]
    np.testing.assert_array_equal(out['img'], full[top:top + 10, left:left + 10])
    # a crop larger than the image keeps it whole, offset 0
    assert RandomCropWithOffset((100, 100))(_sample(20, 30))['crop_offset'] == (0, 0)


@pytest.mark.parametrize('flip', ['horizontal', 'vertical'])
def test_positions_from_packed_meta_match_carried_map(flip):
    """Resize + crop + flip a row-coded label map the way the official loader carries its
    position map (PIL's nearest resize: mmcv's ``pillow`` backend); our positions from the
    packed metainfo must read the same rows."""
    init_default_scope('mmseg')
    pipeline = Compose([
        dict(type='RandomResize', scale=(160, 96), ratio_range=(0.5, 2.0), keep_ratio=True,
             backend='pillow'),
        dict(type='RandomCropWithOffset', crop_size=(48, 64)),
        dict(type='RandomFlip', prob=1.0, direction=flip),
        dict(type='PackSegInputs', meta_keys=META_KEYS),
    ])
    for seed in range(6):
        np.random.seed(seed)
        packed = pipeline(_sample(96, 160, seed))
        sample = packed['data_samples']
        assert 'crop_offset' in sample.metainfo
        carried = sample.gt_sem_seg.data[0, :, 0].long()  # nearest-resized and cropped map
        ours = row_positions_from_meta(sample.metainfo, carried.shape[0])
        assert torch.equal(ours, carried), (seed, ours, carried)
