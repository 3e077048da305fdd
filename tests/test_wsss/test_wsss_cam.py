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
