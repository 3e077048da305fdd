# Copyright (c) mmaffseg contributors. All rights reserved.
"""HANetASPPHead: official DeepLabV3+ layout, placements, row positions from the metainfo."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.models.utils import resize
from mmseg.structures import SegDataSample

from mmaffseg.models.decode_heads import HANetASPPHead
from mmaffseg.models.layers import HANet
from mmaffseg.ops import batch_row_positions

INPUT_HW = (67, 99)  # odd network input; features at 1/4 and 1/8 (rounded up)


def _head(**kwargs) -> HANetASPPHead:
    cfg = dict(in_channels=32, in_index=3, channels=8, c1_in_channels=6, c1_channels=4,
               lower_in_channels=16, lower_index=2, dilations=(1, 2, 3),
               hanet_cfg=dict(reduction=2), num_classes=5, norm_cfg=dict(type='BN'),
               align_corners=True, dropout_ratio=0.0)
    cfg.update(kwargs)
    return HANetASPPHead(**cfg)


def _features(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, c, h, w, generator=g)
        for c, (h, w) in ((6, (17, 25)), (10, (9, 13)), (16, (9, 13)), (32, (9, 13)))
    ]


def _samples(batch=2, crop_tops=(40, 300)):
    """Training crops of 1024x2048 frames resized to 0.5, with recorded offsets."""
    samples = []
    for top in crop_tops[:batch]:
        s = SegDataSample(metainfo=dict(ori_shape=(1024, 2048), img_shape=INPUT_HW,
                                        pad_shape=INPUT_HW, scale_factor=(0.5, 0.5),
                                        crop_offset=(top, 0)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, ) + INPUT_HW))
        samples.append(s)
    return samples


def test_official_layout_and_shapes():
    head = _head().eval()
    assert head.bottleneck.conv.kernel_size == (1, 1)  # 1x1 projection of the concatenation
    assert head.bottleneck.conv.in_channels == 4 * 8  # image pool + 3 ASPP branches
    assert [m.conv.kernel_size for m in head.decoder] == [(3, 3), (3, 3)]
    assert head.decoder[0].conv.in_channels == 4 + 8 and head.decoder[0].conv.groups == 1
    expected = dict(layer4=(16, 32), aspp=(32, 32), bottleneck=(32, 8), decoder=(12, 8))
    for placement, (cin, cout) in expected.items():
        hanet = getattr(head, f'hanet_{placement}')
        assert isinstance(hanet, HANet) and (hanet.in_channels, hanet.out_channels) == (cin, cout)
    positions = torch.randint(0, 128, (2, INPUT_HW[0]))
    assert head(_features(), positions).shape == (2, 5, 17, 25)


def test_placements_subset_and_errors():
    head = _head(hanet_placements=('decoder', ))
    assert [n for n, _ in head.named_children() if n.startswith('hanet_')] == ['hanet_decoder']
    plain = _head(hanet_placements=())
    assert not any(isinstance(m, HANet) for m in plain.modules())
    assert plain.eval()(_features()).shape == (2, 5, 17, 25)
    with pytest.raises(ValueError, match=r"unknown hanet_placements \['layer3'\]"):
        _head(hanet_placements=('layer3', 'aspp'))


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    head = _head().train()
    losses = head.loss(_features(), _samples(), train_cfg=dict())
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_loss_and_predict_use_meta_positions(monkeypatch):
    head = _head().eval()
    feats, samples = _features(), _samples()
    expected = batch_row_positions([s.metainfo for s in samples])
    assert expected[1, 0] == (300 / 0.5) // 8  # absolute: the crop starts at row 600
    seen = []
    forward = head.forward
    monkeypatch.setattr(head, 'forward', lambda x, rp=None: seen.append(rp) or forward(x, rp))
    head.loss(feats, samples, train_cfg=dict())
    metas = [s.metainfo for s in samples]
    logits = head.predict(feats, metas, test_cfg=dict())
    assert len(seen) == 2 and all(torch.equal(rp, expected) for rp in seen)
    with torch.no_grad():
        manual = resize(forward(feats, expected), size=INPUT_HW, mode='bilinear',
                        align_corners=True)
        relative = forward(feats, None)
    torch.testing.assert_close(logits, manual)
    assert not torch.allclose(resize(relative, size=INPUT_HW, mode='bilinear',
                                     align_corners=True), logits)
