# Copyright (c) mmaffseg contributors. All rights reserved.
"""DSRL's SISR decoder and the learned upsampling stages it is built from."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from mmaffseg.models.decode_heads import SRDecoder
from mmaffseg.models.layers import UpsampleStage, build_learned_upsample


@pytest.mark.parametrize('cfg', [
    dict(type='pixel_shuffle', upsample_kernel=3),
    dict(type='deconv'),
    dict(type='deconv', kernel_size=4, stride=2, padding=1),
    dict(type='bilinear'),
    dict(type='nearest'),
])
def test_every_upsample_type_scales_exactly(cfg):
    scale = 2 if cfg.get('stride', 2) == 2 else None
    layer = build_learned_upsample(cfg, 6, 4, scale)
    out = layer(torch.randn(2, 6, 5, 7))
    assert out.shape == (2, 4, 10, 14)
    stage = UpsampleStage(6, 4, 3, dict(cfg, **({'stride': 3} if 'stride' in cfg else {})),
                          num_convs=2, norm_cfg=dict(type='BN'))
    if cfg.get('kernel_size') == 4:
        return  # a k4/s3/p1 deconv does not scale by 3 exactly; covered by the x2 case
    assert stage(torch.randn(2, 6, 5, 7)).shape == (2, 4, 15, 21)


def test_upsample_bad_settings():
    with pytest.raises(ValueError, match="type must be one of"):
        build_learned_upsample(dict(type='carafe'), 4, 4, 2)
    with pytest.raises(ValueError, match='integer scale_factor >= 1, got 1.5'):
        build_learned_upsample(dict(type='deconv'), 4, 4, 1.5)


def test_sr_decoder_reconstructs_at_the_requested_size():
    decoder = MODELS.build(dict(type='SRDecoder', in_channels=(8, 32), in_index=(0, 2),
                                channels=8, upsample_channels=(8, 4, 4),
                                norm_cfg=dict(type='BN')))
    feats = [torch.randn(2, 8, 9, 12), torch.randn(2, 16, 5, 6), torch.randn(2, 32, 5, 6)]
    image, hidden = decoder(feats)
    assert image.shape == (2, 3, 72, 96) and hidden.shape == (2, 4, 72, 96)
    assert decoder.feat_channels == 4
    image, hidden = decoder(feats, out_size=(69, 101))  # odd original size: rounding only
    assert image.shape == (2, 3, 69, 101) and hidden.shape == (2, 4, 69, 101)
    image.mean().backward()
    assert all(p.grad is not None for p in decoder.parameters())


def test_sr_decoder_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match=r'one in_channels entry per in_index entry, got '
                       r'in_channels=\(8, 32\) and in_index=\(0,\)'):
        SRDecoder(in_channels=(8, 32), in_index=0)
    with pytest.raises(ValueError, match='at least one upsampling stage'):
        SRDecoder(in_channels=8, upsample_channels=())
    with pytest.raises(ValueError, match=r'one int or one per stage, got \(2, 2\) for 3 stages'):
        SRDecoder(in_channels=8, upsample_scales=(2, 2))
    decoder = SRDecoder(in_channels=(8, 16), in_index=(0, 1), channels=4,
                        upsample_channels=(4, ))
    with pytest.raises(ValueError, match='expects 16 channels from encoder output 1, got 32'):
        decoder([torch.randn(1, 8, 4, 4), torch.randn(1, 32, 2, 2)])
    with pytest.raises(ValueError, match=r'turn the 4x4 encoder map into 8x8, but the image to '
                       r'reconstruct is 32x32 \(x8\)'):
        decoder([torch.randn(1, 8, 4, 4), torch.randn(1, 16, 2, 2)], out_size=(32, 32))


def _pixel_shuffle(x, s):
    """out[c, s h + i, s w + j] = in[c s^2 + i s + j, h, w], written out with index loops."""
    b, c, h, w = x.shape
    out = x.new_zeros(b, c // (s * s), h * s, w * s)
    for ch in range(c // (s * s)):
        for i in range(s):
            for j in range(s):
                out[:, ch, i::s, j::s] = x[:, ch * s * s + i * s + j]
    return out


def test_sr_decoder_equals_naive_recomputation():
    # 1x1 conv + ReLU per selected map, bilinear resize to the finest one, concat in in_index
    # order, 3x3 conv + ReLU, per stage: 3x3 conv to s^2 * out channels, pixel shuffle, 3x3
    # conv + ReLU; finally a 3x3 conv to RGB. Same weights, no normalisation.
    torch.manual_seed(0)
    decoder = SRDecoder(in_channels=(8, 32), in_index=(0, 2), channels=6,
                        upsample_channels=(5, 4)).eval()
    gen = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, 8, 9, 12, generator=gen), torch.randn(2, 16, 5, 6, generator=gen),
             torch.randn(2, 32, 5, 6, generator=gen)]

    def conv(x, layer, relu=True):
        y = F.conv2d(x, layer.weight, layer.bias, padding=layer.kernel_size[0] // 2)
        return torch.relu(y) if relu else y

    with torch.no_grad():
        lateral = [conv(feats[0], decoder.lateral_convs[0].conv),
                   F.interpolate(conv(feats[2], decoder.lateral_convs[1].conv), (9, 12),
                                 mode='bilinear', align_corners=False)]
        x = conv(torch.cat(lateral, dim=1), decoder.fusion_conv.conv)
        for stage in decoder.upsample_stages:
            x = _pixel_shuffle(conv(x, stage.upsample.upsample_conv, relu=False), 2)
            x = conv(x, stage.convs[0].conv)
        image = conv(x, decoder.to_image, relu=False)
        got_image, got_feats = decoder(feats)
    assert got_image.shape == (2, 3, 36, 48)
    torch.testing.assert_close(got_feats, x)
    torch.testing.assert_close(got_image, image)
