# Copyright (c) mmaffseg contributors. All rights reserved.
"""The per-image step both PSA loops share: the sample read once, the affinities predicted
once per image on the grid of the AffinityNet's head, the stage labels those of
``stage_labels`` with the loop's settings, and the errors it raises for a bad image."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmaffseg.ops.neighbour_offsets import from_window, neighbour_offsets
from mmaffseg.wsss.image_step import ImageStep, PSAImage
from mmaffseg.wsss.pseudo_label_stages import stage_labels

SETTINGS = dict(cam_bg_score=0.3, low_alpha=2, high_alpha=8, rw_alpha=3, rw_beta=2, rw_logt=2)
RADIUS, STRIDE = 2, 4


class _Head:
    radius, label_stride = RADIUS, STRIDE


class _AffinityNet:
    """``predict_affinity`` of seeded random affinities, counting its calls."""

    decode_head = _Head()

    def __init__(self, grid):
        self.calls = 0
        rows, cols = from_window(RADIUS, grid)
        self.aff = torch.rand(1, len(neighbour_offsets(RADIUS)), rows * cols,
                              generator=torch.Generator().manual_seed(0))

    def data_preprocessor(self, batch, training):
        return dict(inputs=torch.stack(batch['inputs']).float())

    def predict_affinity(self, inputs):
        self.calls += 1
        return self.aff


def _image(size=(16, 24)):
    g = torch.Generator().manual_seed(1)
    image = PSAImage(dict(inputs=torch.zeros(3, *size, dtype=torch.uint8),
                          data_samples=SegDataSample()), None, torch.tensor([1., 0., 1.]))
    image.cams, image.class_ids = torch.rand(2, *size, generator=g), torch.tensor([0, 2])
    return image


def test_affinities_once_per_image_and_the_labels_of_stage_labels():
    image, aff_net = _image(), _AffinityNet((4, 6))
    step = ImageStep(None, aff_net, None, (1.0, ), SETTINGS)
    cam, _ = step.stage_labels(image, ['cam'])
    assert aff_net.calls == 0  # no walk, no affinities
    rw, _ = step.stage_labels(image, ['rw'])
    _, unaries = step.stage_labels(image, ['rw_crf'])
    assert aff_net.calls == 1
    assert step.affinities(image) == (aff_net.aff, dict(radius=RADIUS, stride=STRIDE))
    expected, expected_unaries = stage_labels(image.cams, image.class_ids, ['cam', 'rw', 'rw_crf'],
                                              aff_net.aff, radius=RADIUS, stride=STRIDE,
                                              **SETTINGS)
    torch.testing.assert_close(cam['cam'], expected['cam'], rtol=0, atol=0)
    torch.testing.assert_close(rw['rw'], expected['rw'], rtol=0, atol=0)
    assert (unaries['rw_crf'] == expected_unaries['rw_crf']).all()


def test_errors_of_a_bad_image():
    with pytest.raises(ValueError, match='needs the AffinityNet'):
        ImageStep(None, None, None, (1.0, ), SETTINGS).stage_labels(_image(), ['rw'])
    step = ImageStep(None, None, None, (1.0, 0.01), SETTINGS)
    image = _image()
    with pytest.raises(ValueError, match='too small for the CAM scale 0.01'):
        step.cams(image, 'unused.npz')
    image.class_labels = torch.zeros(3)
    with pytest.raises(ValueError, match='no image-level labels'):
        step.cams(image, 'unused.npz')

    class Dropping:
        def prepare_data(self, index):
            return None

    with pytest.raises(ValueError, match='dropped the image'):
        ImageStep.load(Dropping(), 0)


def test_load_reads_the_mask_and_the_labels():
    sample = SegDataSample(metainfo=dict(gt_class_labels=[0, 1, 1]))
    sample.gt_sem_seg = PixelData(data=torch.full((1, 4, 6), 2))

    class One:
        def prepare_data(self, index):
            return dict(inputs=torch.zeros(3, 4, 6, dtype=torch.uint8), data_samples=sample)

    image = ImageStep.load(One(), 0)
    assert image.gt.shape == (4, 6) and (image.gt == 2).all()
    assert image.class_labels.tolist() == [0., 1., 1.] and image.cams is None
