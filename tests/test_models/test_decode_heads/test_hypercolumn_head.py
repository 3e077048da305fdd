# Copyright (c) mmaffseg contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmaffseg  # noqa: F401  (registers the modules)

TINY_RESNET = dict(type='ResNetV1c', depth=18, stem_channels=16, base_channels=8,
                   out_indices=(1, 2, 3), norm_cfg=dict(type='BN'))
# image, stem (maxpool, 16 ch), stages 2-4 of the thin ResNet-18 (16, 32, 64 ch)
TINY_IN = (3, 16, 16, 32, 64)


def _head(**kwargs):
    cfg = dict(type='HypercolumnHead', in_channels=TINY_IN, tap_channels=(2, 3, 4, 5, 6),
               channels=12, embed_dims=6,
               loss_decode=dict(type='NPairL2Loss', num_pixels=10, num_resamples=2))
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('stride,size', [(1, (37, 53)), (4, (10, 14))])
def test_head_output_shape(stride, size):
    backbone = MODELS.build(dict(type='HypercolumnBackbone', backbone=TINY_RESNET))
    head = _head(output_stride=stride)
    out = head(backbone(torch.randn(2, 3, 37, 53)))
    assert out.shape == (2, 6, *size)


def test_default_head_matches_the_paper():
    head = MODELS.build(dict(type='HypercolumnHead', in_channels=(3, 64, 512, 1024, 2048)))
    assert [t.conv.out_channels for t in head.taps] == [4, 124, 128, 256, 512]
    assert [t.conv.kernel_size[0] for t in head.taps] == [1, 1, 1, 3, 3]
    assert head.hidden.conv.in_channels == 1024 and head.hidden.conv.out_channels == 512
    assert head.conv_seg.in_channels == 512 and head.conv_seg.out_channels == 128
    assert isinstance(head.dropout, torch.nn.Dropout) and head.dropout.p == 0.5
    assert isinstance(head.hidden_dropout, torch.nn.Dropout) and head.hidden_dropout.p == 0.5


def test_head_argument_errors():
    with pytest.raises(ValueError, match=r'num_classes \(19\) must equal embed_dims \(6\)'):
        _head(num_classes=19)
    with pytest.raises(ValueError, match='one entry per tap'):
        _head(tap_channels=(2, 3))
    with pytest.raises(ValueError, match="input_transform must be 'multiple_select'"):
        _head(input_transform='resize_concat')


def _sample(h, w, inst_hw=None, with_inst=True):
    sem = torch.zeros(1, h, w, dtype=torch.long)
    sem[:, :, w // 2:] = 13
    sem[:, :2, :2] = 255
    sample = SegDataSample(gt_sem_seg=PixelData(data=sem))
    if with_inst:
        ih, iw = inst_hw or (h, w)
        inst = torch.zeros(1, ih, iw, dtype=torch.long)
        inst[:, :ih // 2, w // 2:] = 1
        inst[:, ih // 2:, w // 2:] = 2
        sample.gt_instance_map = PixelData(data=inst)
    sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
    return sample


def test_segment_labels_from_instances_and_padding():
    head = _head()
    labels = head._stack_segment_labels([_sample(8, 10), _sample(8, 10, inst_hw=(6, 10))])
    assert labels.shape == (2, 8, 10)
    first = labels[0]
    assert len({first[0, 0].item(), first[0, 9].item(), first[7, 9].item()}) == 3
    assert (labels[1, 6:] == 255).all()  # the unpadded instance map is padded with ignore
    sem_only = head._stack_segment_labels([_sample(8, 10, with_inst=False)])
    assert set(sem_only.unique().tolist()) == {0, 13, 255}
    with pytest.raises(ValueError, match='some samples of the batch but not others'):
        head._stack_segment_labels([_sample(8, 10), _sample(8, 10, with_inst=False)])


def _segmentor(**head_kwargs):
    init_default_scope('mmseg')
    head = dict(type='HypercolumnHead', in_channels=TINY_IN, tap_channels=(2, 3, 4, 5, 6),
                channels=12, embed_dims=6,
                loss_decode=dict(type='NPairL2Loss', num_pixels=10, num_resamples=2))
    head.update(head_kwargs)
    return MODELS.build(
        dict(type='FeatureEmbeddingSegmentor',
             data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5] * 3,
                                    std=[64.] * 3, size=(24, 32)),
             backbone=dict(type='HypercolumnBackbone', backbone=TINY_RESNET),
             decode_head=head, test_cfg=ConfigDict(mode='whole')))


@pytest.mark.parametrize('stride', [1, 2])
def test_one_train_step_reaches_every_parameter(stride):
    torch.manual_seed(0)
    model = _segmentor(output_stride=stride)
    model.train()
    data = dict(inputs=[torch.randint(0, 255, (3, 24, 32)).float() for _ in range(2)],
                data_samples=[_sample(24, 32), _sample(24, 32)])
    data = model.data_preprocessor(data, training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'decode.loss_npair'}
    loss = losses['decode.loss_npair']
    assert torch.isfinite(loss) and loss.item() != 0
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and
               (p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)]
    assert not missing


def test_predict_returns_the_embedding_at_original_size():
    model = _segmentor().eval()
    sample = _sample(24, 32)
    sample.set_metainfo(dict(ori_shape=(30, 41), flip=False))
    data = model.data_preprocessor(
        dict(inputs=[torch.rand(3, 24, 32) * 255], data_samples=[sample]), training=False)
    with torch.no_grad():
        out = model(**data, mode='predict')[0]
        emb = model.extract_embedding(data['inputs'])
    assert out.seg_logits.data.shape == (6, 30, 41)
    assert 'pred_sem_seg' not in out
    assert emb.shape == (1, 6, 24, 32)


@pytest.mark.parametrize('stride', [1, 2])
def test_head_equals_naive_hypercolumn_from_the_backbone_taps(stride):
    # Taps recomputed from the plain ResNet (image, maxpool, stages 2-4), then each tap conv,
    # bilinear resize to ceil(size / stride), concat in tap order, ReLU, 1x1 -> ReLU, 1x1.
    torch.manual_seed(0)
    wrapper = MODELS.build(dict(type='HypercolumnBackbone', backbone=TINY_RESNET)).eval()
    head = _head(output_stride=stride, tap_kernel_sizes=(1, 3, 1, 3, 3)).eval()
    x = torch.randn(2, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        resnet = wrapper.backbone
        stem = resnet.maxpool(resnet.stem(x))
        l1 = resnet.layer1(stem)
        l2 = resnet.layer2(l1)
        l3 = resnet.layer3(l2)
        l4 = resnet.layer4(l3)
        taps = [x, stem, l2, l3, l4]
        outs = wrapper(x)
        assert len(outs) == 5
        for got, want in zip(outs, taps):
            torch.testing.assert_close(got, want)
        size = (-(-37 // stride), -(-53 // stride))
        columns = []
        for tap, feat in zip(head.taps, taps):
            conv = tap.conv
            y = F.conv2d(feat, conv.weight, conv.bias, padding=conv.kernel_size[0] // 2)
            columns.append(F.interpolate(y, size, mode='bilinear', align_corners=False))
        hyper = torch.relu(torch.cat(columns, dim=1))
        assert hyper.shape[1] == 2 + 3 + 4 + 5 + 6
        hidden = torch.relu(F.conv2d(hyper, head.hidden.conv.weight, head.hidden.conv.bias))
        expected = F.conv2d(hidden, head.conv_seg.weight, head.conv_seg.bias)
        torch.testing.assert_close(head(outs), expected)
