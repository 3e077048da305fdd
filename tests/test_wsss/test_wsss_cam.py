# Copyright (c) mmaffseg contributors. All rights reserved.
"""CAM utilities: background score, stack -> label mapping, multi-scale flipped CAMs."""
import pytest
import torch
import torch.nn.functional as F

from mmaffseg.wsss.cam import add_background, multi_scale_cam, stack_to_label


def test_add_background():
    cams = torch.tensor([[[0.2, 1.0]], [[0.5, 0.0]]])  # (2, 1, 2)
    stack = add_background(cams, 2)
    torch.testing.assert_close(stack[0], torch.tensor([[0.25, 0.0]]))
    torch.testing.assert_close(stack[1:], cams)
    assert add_background(torch.zeros(3, 0, 4, 5), 16).shape == (3, 1, 4, 5)
    assert (add_background(torch.zeros(0, 4, 5), 16) == 1).all()


def test_stack_to_label():
    index = torch.tensor([[0, 1], [2, 1]])
    torch.testing.assert_close(stack_to_label(index, torch.tensor([4, 11])),
                               torch.tensor([[0, 5], [12, 5]]))


def ramp_cam(x):
    """A CAM function that is not flip-equivariant: (N, 3, h, w) -> (N, 3, h/2, w/2)."""
    ramp = torch.linspace(1, 2, x.shape[-1])
    return F.avg_pool2d(x.clamp(min=0) * ramp, 2)


def test_single_scale_flip_brute_force():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 10, 14, generator=g)
    cams, ids = multi_scale_cam(ramp_cam, img, torch.tensor([1., 0., 1.]), scales=(1.0, ))
    up = lambda c: F.interpolate(c, (10, 14), mode='bilinear', align_corners=False)  # noqa
    total = up(ramp_cam(img[None]))[0] + up(ramp_cam(img[None].flip(-1)))[0].flip(-1)
    expected = total[[0, 2]] / (total[[0, 2]].amax(dim=(1, 2), keepdim=True) + 1e-5)
    torch.testing.assert_close(cams, expected)
    torch.testing.assert_close(ids, torch.tensor([0, 2]))


def test_multi_scale_shapes_and_normalisation_at_odd_size():
    g = torch.Generator().manual_seed(1)
    img = torch.rand(1, 3, 37, 51, generator=g)
    calls = []

    def cam_fn(x):
        calls.append(tuple(x.shape))
        return ramp_cam(x)

    cams, ids = multi_scale_cam(cam_fn, img, torch.tensor([0, 1, 1]))
    assert cams.shape == (2, 37, 51) and ids.tolist() == [1, 2]
    assert calls == [(2, 3, 37, 51), (2, 3, 18, 26), (2, 3, 56, 76), (2, 3, 74, 102)]
    torch.testing.assert_close(cams.amax(dim=(1, 2)), torch.ones(2), rtol=0, atol=1e-4)
    assert cams.min() >= 0


def test_multi_scale_errors():
    with pytest.raises(ValueError, match='takes one image'):
        multi_scale_cam(ramp_cam, torch.rand(2, 3, 8, 8), torch.ones(3))
    with pytest.raises(ValueError, match='cam_fn gives 3 classes but class_labels has 4'):
        multi_scale_cam(ramp_cam, torch.rand(3, 8, 8), torch.ones(4))


@pytest.mark.parametrize('shape', [(37, 51), (50, 33)])
def test_scaled_inputs_are_the_official_multi_scale_images(shape):
    """voc12/data.VOC12ClsDatasetMSF: every scale resizes the decoded RGB image with PIL's
    CUBIC filter to (round(w * s), round(h * s)), then resnet38d.Normalize; the CAM network
    gets exactly those images (and their flips) through pil_scaled_inputs and the PSA
    config's data preprocessor."""
    import os.path as osp
    from types import SimpleNamespace

    import numpy as np
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from PIL import Image
    from psa_crop_reference import official_normalize

    from mmaffseg.wsss.pseudo_label_stages import pil_scaled_inputs
    init_default_scope('mmseg')
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(repo, 'configs', 'psa',
                                   'psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py'))
    model = SimpleNamespace(data_preprocessor=MODELS.build(cfg.model.data_preprocessor))
    rgb = np.random.default_rng(shape[0]).integers(0, 256, shape + (3, ), dtype=np.uint8)
    data = dict(inputs=torch.from_numpy(rgb[..., ::-1].copy()).permute(2, 0, 1).contiguous(),
                data_samples=SegDataSample())  # as PackSegInputs packs a BGR image
    img_norm = model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]), False)['inputs']
    seen = []

    def cam_fn(x):
        seen.append(x)
        return ramp_cam(x)

    multi_scale_cam(cam_fn, img_norm, torch.tensor([1., 1., 0.]),
                    scaled_input=pil_scaled_inputs(model, data))
    pil = Image.fromarray(rgb)
    height, width = shape
    for scale, batch in zip((1, 0.5, 1.5, 2.0), seen):
        size = (round(width * scale), round(height * scale))
        resized = pil.resize(size, resample=Image.BICUBIC)  # the reference's CUBIC (same filter)
        expected = official_normalize(np.asarray(resized))
        expected = torch.from_numpy(expected).permute(2, 0, 1)
        torch.testing.assert_close(batch[0], expected, rtol=0, atol=2e-5)
        torch.testing.assert_close(batch[1], expected.flip(-1), rtol=0, atol=2e-5)
