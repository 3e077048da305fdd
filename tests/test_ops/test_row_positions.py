# Copyright (c) mmaffseg contributors. All rights reserved.
"""Absolute row bins recovered from the metainfo."""
import numpy as np
import torch
from hanet_position_reference import FRAME_COLS, FRAME_ROWS, official_draw, official_position_column
from PIL import Image

from mmaffseg.ops import NUM_ROW_BINS, PAD_ROW_BIN, batch_row_positions, row_positions_from_meta


def _brute_force(ori_h, scale_h, top, height, flip_h=None):
    """Row bin of each input row: the bin map of the original image carried as the official
    loader carries it (PIL ``NEAREST`` resize, padding value 128), one row at a time."""
    bins = (np.arange(ori_h) * NUM_ROW_BINS // ori_h).astype(np.uint8)
    resized_h = round(ori_h * scale_h)
    column = Image.fromarray(bins[:, None], mode='L').resize((1, resized_h), Image.NEAREST)
    column = np.asarray(column)[:, 0]
    out = []
    for y in range(height):
        if flip_h is not None:
            y = flip_h - 1 - y
        row = y + top
        out.append(int(column[row]) if 0 <= row < resized_h else 128)
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
    # the first row's centre is source row (1024 + 0.5) / 1.5 = 683: bin 85; padding gets 128
    assert got[0] == 85 and got[511] == NUM_ROW_BINS - 1 and (got[512:] == 128).all()


def test_vertical_flip_after_crop():
    meta = dict(ori_shape=(600, 800), img_shape=(200, 300), scale_factor=(0.75, 0.75),
                crop_offset=(120, 0), flip=True, flip_direction='vertical')
    assert torch.equal(row_positions_from_meta(meta, 200),
                       _brute_force(600, 0.75, 120, 200, flip_h=200))
    meta['flip_direction'] = 'horizontal'
    assert torch.equal(row_positions_from_meta(meta, 200), _brute_force(600, 0.75, 120, 200))


def test_flip_directions_of_mmcv_random_flip():
    """Every direction mmcv's RandomFlip offers: the positions follow what it does to the rows
    (diagonal flips both axes, so it reverses the rows as vertical does)."""
    import pytest
    from mmcv.transforms import RandomFlip
    rows = np.repeat(np.arange(200, dtype=np.uint8)[:, None, None], 3, axis=2).repeat(4, axis=1)
    for direction in ('horizontal', 'vertical', 'diagonal'):
        results = RandomFlip(prob=1.0, direction=direction)(dict(img=rows.copy()))
        reversed_rows = results['img'][0, 0, 0] == 199
        meta = dict(ori_shape=(600, 800), img_shape=(200, 4), scale_factor=(0.75, 0.75),
                    crop_offset=(120, 0), flip=results['flip'],
                    flip_direction=results['flip_direction'])
        expected = _brute_force(600, 0.75, 120, 200, flip_h=200 if reversed_rows else None)
        assert torch.equal(row_positions_from_meta(meta, 200), expected), direction
    meta['flip_direction'] = 'sideways'
    with pytest.raises(ValueError, match="unknown flip_direction 'sideways'"):
        row_positions_from_meta(meta, 200)


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


def test_meta_path_equals_the_official_position_map_over_random_draws():
    """3000 official scale / crop draws (crops of 512, 720 and 864 rows, the map padded when
    the scaled frame is shorter than the crop): the bins from the metainfo equal, row for row,
    the official map resized by PIL's NEAREST, padded with 128 and cropped."""
    rng = np.random.default_rng(0)
    mismatched = []
    for draw in range(3000):
        crop_rows = (512, 720, 864)[draw % 3]
        resized, pad, y1 = official_draw(rng, crop_rows)
        expected = official_position_column(resized, crop_rows, y1)
        meta = dict(ori_shape=(FRAME_ROWS, FRAME_COLS), img_shape=(crop_rows, 1024),
                    scale_factor=(resized / FRAME_ROWS, resized / FRAME_ROWS),
                    crop_offset=(y1 - pad, 0))
        ours = row_positions_from_meta(meta, crop_rows).numpy()
        if not np.array_equal(ours, expected):
            mismatched.append((resized, pad, y1, int((ours != expected).sum())))
    assert not mismatched, mismatched[:5]


def test_ties_follow_pil():
    """Rows whose centre falls exactly on a source row boundary (768 rows -> row 4 of a 6-row
    map reads source 767, not 768, in PIL's accumulated arithmetic)."""
    for resized in (6, 1500):
        expected = official_position_column(resized, resized, 0)
        meta = dict(ori_shape=(FRAME_ROWS, FRAME_COLS), img_shape=(resized, 12),
                    scale_factor=(resized / FRAME_ROWS, resized / FRAME_ROWS))
        np.testing.assert_array_equal(row_positions_from_meta(meta, resized).numpy(), expected)


def test_rows_outside_the_image_get_the_official_padding_value():
    meta = dict(ori_shape=(1024, 2048), img_shape=(500, 1024), scale_factor=(0.5, 0.5),
                crop_offset=(-6, 0))
    got = row_positions_from_meta(meta, 520)
    assert (got[:6] == PAD_ROW_BIN).all() and (got[6 + 512:] == PAD_ROW_BIN).all()
    assert PAD_ROW_BIN == 128
    assert got[6:6 + 512].max() == NUM_ROW_BINS - 1
