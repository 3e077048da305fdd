# Copyright (c) mmaffseg contributors. All rights reserved.
"""Absolute row bins recovered from the metainfo."""
import torch

from mmaffseg.ops import NUM_ROW_BINS, batch_row_positions, row_positions_from_meta


def _brute_force(ori_h, scale_h, top, height, flip_h=None):
    """Row bin of each input row, one row at a time with Python integers."""
    out = []
    for y in range(height):
        if flip_h is not None:
            y = flip_h - 1 - y
        original_row = int((y + top) // scale_h)
        out.append(min(max(original_row * NUM_ROW_BINS // ori_h, 0), NUM_ROW_BINS - 1))
    return torch.tensor(out)


def test_whole_resized_image():
    meta = dict(ori_shape=(1024, 2048), img_shape=(512, 1024), scale_factor=(0.5, 0.5))
    assert torch.equal(row_positions_from_meta(meta, 512), torch.arange(512) // 4)
    # no Resize in the pipeline: scale 1
    meta = dict(ori_shape=(300, 400), img_shape=(300, 400))
    assert torch.equal(row_positions_from_meta(meta, 300), _brute_force(300, 1.0, 0, 300))


def test_crop_offset_scale_and_padding():
    # the bottom crop of a 1.5x image, plus 20 rows of batch padding
    meta = dict(ori_shape=(1024, 2048), img_shape=(512, 1024), scale_factor=(1.5, 1.5),
                crop_offset=(1024, 33))
    got = row_positions_from_meta(meta, 532)
    assert torch.equal(got, _brute_force(1024, 1.5, 1024, 532))
    assert got[0] == (1024 // 1.5) // 8 and (got[511:] == NUM_ROW_BINS - 1).all()


def test_vertical_flip_after_crop():
    meta = dict(ori_shape=(600, 800), img_shape=(200, 300), scale_factor=(0.75, 0.75),
                crop_offset=(120, 0), flip=True, flip_direction='vertical')
    assert torch.equal(row_positions_from_meta(meta, 200),
                       _brute_force(600, 0.75, 120, 200, flip_h=200))
    meta['flip_direction'] = 'horizontal'
    assert torch.equal(row_positions_from_meta(meta, 200), _brute_force(600, 0.75, 120, 200))


def test_unrecorded_crop_is_unknown():
    cropped = dict(ori_shape=(1024, 2048), img_shape=(512, 1024), scale_factor=(1.0, 1.0))
    assert row_positions_from_meta(cropped, 512) is None
    assert row_positions_from_meta(dict(img_shape=(8, 8)), 8) is None
    whole = dict(ori_shape=(512, 1024), img_shape=(512, 1024), scale_factor=(1.0, 1.0))
    assert batch_row_positions([whole, cropped], 512) is None
    assert batch_row_positions([]) is None


def test_explicit_row_positions_win_and_are_resized():
    meta = dict(ori_shape=(64, 64), img_shape=(4, 4), row_positions=torch.tensor([3, 5, 7, 9]))
    assert torch.equal(row_positions_from_meta(meta, 4), torch.tensor([3, 5, 7, 9]))
    assert torch.equal(row_positions_from_meta(meta, 8), torch.tensor([3, 3, 5, 5, 7, 7, 9, 9]))


def test_batch_height_defaults_to_pad_shape():
    metas = [
        dict(ori_shape=(256, 512), img_shape=(128, 256), pad_shape=(136, 256),
             scale_factor=(1.0, 1.0), crop_offset=(top, 0)) for top in (0, 100)
    ]
    got = batch_row_positions(metas)
    assert got.shape == (2, 136) and got.dtype == torch.long
    assert torch.equal(got[1], _brute_force(256, 1.0, 100, 136))
