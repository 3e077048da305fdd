# Copyright (c) mmaffseg contributors. All rights reserved.
"""AffSegLocalVisualizer paints instances and embeddings, and label maps exactly as mmseg."""
import mmcv
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.utils import get_classes, get_palette
from mmseg.visualization import SegLocalVisualizer

from mmaffseg.visualization import AffSegLocalVisualizer, instance_caption, visualize_embedding

H, W = 24, 40
THING_IDS = (11, 12, 13, 14, 15, 16, 17, 18)


def _visualizer(name: str, cls=AffSegLocalVisualizer, alpha: float = 0.5):
    vis = cls(name=name, alpha=alpha)
    vis.dataset_meta = dict(classes=get_classes('cityscapes'), palette=get_palette('cityscapes'))
    return vis


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def _instances() -> InstanceData:
    masks = torch.zeros(2, H, W, dtype=torch.bool)
    masks[0, 2:10, 3:15] = True
    masks[1, 12:22, 20:38] = True
    return InstanceData(masks=masks, labels=torch.tensor([2, 0]), scores=torch.tensor([.9, .4]))


def test_registered():
    assert VISUALIZERS.get('AffSegLocalVisualizer') is AffSegLocalVisualizer
    assert issubclass(AffSegLocalVisualizer, SegLocalVisualizer)


def test_instance_caption_names_the_thing_class():
    classes = get_classes('cityscapes')
    assert instance_caption(2, 0.873, classes, THING_IDS) == 'car 0.87'
    assert instance_caption(0, None, classes, THING_IDS) == 'person'
    assert instance_caption(30, 0.5, classes, None) == 'class 30 0.50'


def test_instances_are_blended_inside_their_masks_only():
    image = _image()
    instances = _instances()
    vis = _visualizer('vis_blend', alpha=0.5)
    picture = vis.draw_instances(image, instances, THING_IDS, with_labels=False)
    masks = instances.masks.numpy()
    outside = ~masks.any(0)
    np.testing.assert_array_equal(picture[outside], image[outside])
    colours = []
    for mask in masks:
        inside = picture[mask].astype(np.int64)
        # the same colour blended into every pixel of the mask: image * 0.5 + c * 0.5
        colour = inside * 2 - image[mask].astype(np.int64)
        assert np.ptp(colour, axis=0).max() <= 2
        colours.append(colour.mean(0))
    assert np.abs(colours[0] - colours[1]).max() > 20  # one colour per instance


def test_add_datasample_instances_with_captions(tmp_path):
    image = _image()
    sample = SegDataSample(metainfo=dict(thing_class_ids=THING_IDS))
    sample.pred_instances = _instances()
    sample.gt_sem_seg = PixelData(data=torch.full((1, H, W), 13))
    vis = _visualizer('vis_instances')
    out = tmp_path / 'painted.png'
    vis.add_datasample('x', image, sample, out_file=str(out))
    drawn = vis.get_image()
    assert drawn.shape == (H, 2 * W, 3) and out.is_file()  # ground truth | prediction
    plain = _visualizer('vis_plain').draw_instances(image, sample.pred_instances, THING_IDS,
                                                    with_labels=False)
    assert not np.array_equal(drawn[:, W:], plain)  # the captions are written


def test_add_datasample_embedding_is_its_pca_picture():
    image = _image()
    embedding = torch.randn(8, H, W, generator=torch.Generator().manual_seed(0))
    sample = SegDataSample()
    sample.seg_logits = PixelData(data=embedding)
    vis = _visualizer('vis_embedding')
    vis.add_datasample('x', image, sample, draw_gt=False)
    guide = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    expected = (visualize_embedding(embedding, guide).permute(1, 2, 0).numpy() * 255).round()
    np.testing.assert_array_equal(vis.get_image(), expected.astype(np.uint8))


def test_label_maps_are_painted_as_mmseg_paints_them():
    image = _image()
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(
        data=torch.randint(0, 19, (1, H, W), generator=torch.Generator().manual_seed(0)))
    ours = _visualizer('vis_ours')
    ours.add_datasample('x', image, sample)
    theirs = _visualizer('vis_theirs', cls=SegLocalVisualizer)
    theirs.add_datasample('x', image, sample)
    np.testing.assert_array_equal(ours.get_image(), theirs.get_image())


def test_mask_size_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match='do not match the image'):
        _visualizer('vis_err').draw_instances(_image()[:10], _instances())


@pytest.mark.parametrize('hw', [(1, 1), (1, 5), (5, 1)])
@pytest.mark.parametrize('with_labels', [False, True])
def test_one_pixel_high_or_wide_label_maps_are_painted(hw, with_labels, tmp_path):
    """mmseg indexes its mask with the map's torch tensor, which numpy reads as the index 1
    when it has one element (a 1x1 image: IndexError); ours paints every size."""
    image = np.random.default_rng(0).integers(0, 256, hw + (3, ), dtype=np.uint8)
    labels = torch.arange(hw[0] * hw[1]).reshape(1, *hw) % 19
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=labels)
    sample.gt_sem_seg = PixelData(data=labels.flip(-1))
    vis = _visualizer(f'vis_tiny_{hw}_{with_labels}', alpha=0.5)
    out = str(tmp_path / 'painted.png')
    vis.add_datasample('x', image, sample, draw_gt=True, with_labels=with_labels, out_file=out)
    picture = mmcv.imread(out, channel_order='rgb')
    assert picture.shape == (hw[0], 2 * hw[1], 3)  # ground truth | prediction
    if not with_labels:  # (a caption's box may cover a tiny picture)
        palette = np.array(get_palette('cityscapes'))
        for panel, truth in ((picture[:, :hw[1]], labels.flip(-1)), (picture[:, hw[1]:], labels)):
            expected = (image * 0.5 + palette[truth[0].numpy()] * 0.5).astype(np.uint8)
            np.testing.assert_array_equal(panel, expected)
