# Copyright (c) mmaffseg contributors. All rights reserved.
import pytest
import torch
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401  (registers the modules)

TINY_RESNET = dict(type='ResNetV1c', depth=18, stem_channels=16, base_channels=8,
                   out_indices=(1, 2, 3), norm_cfg=dict(type='BN'))


def test_backbone_returns_image_stem_and_stages():
    backbone = MODELS.build(dict(type='HypercolumnBackbone', backbone=TINY_RESNET))
    x = torch.randn(2, 3, 37, 53)
    outs = backbone(x)
    assert [tuple(o.shape) for o in outs] == [(2, 3, 37, 53), (2, 16, 10, 14), (2, 16, 5, 7),
                                              (2, 32, 3, 4), (2, 64, 2, 2)]
    assert outs[0] is x
    assert not backbone.backbone.maxpool._forward_hooks  # the hook does not outlive forward
    no_img = MODELS.build(dict(type='HypercolumnBackbone', backbone=TINY_RESNET,
                               with_input=False, stem_module='stem'))
    assert tuple(no_img(x)[0].shape) == (2, 16, 19, 27)  # deep stem before the max pool
    with pytest.raises(ValueError, match="no submodule 'pool1'"):
        MODELS.build(dict(type='HypercolumnBackbone', backbone=TINY_RESNET, stem_module='pool1'))


def test_pretrained_goes_to_the_wrapped_backbone(tmp_path):
    inner = MODELS.build(TINY_RESNET)
    for p in inner.parameters():
        torch.nn.init.constant_(p, 0.25)
    torch.save(dict(state_dict=inner.state_dict()), str(tmp_path / 'r18.pth'))
    wrapper = MODELS.build(dict(type='HypercolumnBackbone', backbone=TINY_RESNET,
                                pretrained=str(tmp_path / 'r18.pth')))
    wrapper.init_weights()
    stem_conv = wrapper.backbone.stem[0].weight  # ResNetV1c: deep stem
    assert torch.equal(stem_conv, torch.full_like(stem_conv, 0.25))
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(dict(type='HypercolumnBackbone', pretrained='x.pth',
                          backbone=dict(TINY_RESNET, init_cfg=dict(type='Pretrained',
                                                                   checkpoint='y.pth'))))
