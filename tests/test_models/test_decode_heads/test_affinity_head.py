# Copyright (c) mmaffseg contributors. All rights reserved.
"""AffinityNet head: golden affinities, brute-force pairs, training through AffinityNet."""
import pytest
import torch
from benchmarks.dense_random_walk import dense_affinity_matrix
from golden import assert_close, case_paths, load_case
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmaffseg  # noqa: F401
from mmaffseg.models.decode_heads import AffinityHead
from mmaffseg.ops import pairwise_affinity
from mmaffseg.ops.neighbour_offsets import pair_indices

AFFINITY_CASES = case_paths('psa', 'affinity_*')
R18_D8 = dict(type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
              dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=dict(type='BN'),
              contract_dilation=True)


def test_affinity_fixtures_exist():
    assert len(AFFINITY_CASES) >= 2


@pytest.mark.parametrize('path', AFFINITY_CASES, ids=lambda p: p.split('/')[-1])
def test_golden_affinity(path):
    case = load_case(path)
    feat = torch.from_numpy(case.inputs['feat'])
    aff = pairwise_affinity(feat, **case.meta['ctor'])
    assert_close(case, 'aff', aff)
    if 'aff_dense' in case.outputs:
        assert_close(case, 'aff_dense',
                     dense_affinity_matrix(aff, feat.shape[-2:], **case.meta['ctor']))


def test_affinity_matches_pair_loop_on_odd_grid():
    g = torch.Generator().manual_seed(0)
    feat = torch.rand(2, 6, 9, 11, generator=g, dtype=torch.float64)
    aff = pairwise_affinity(feat, 3)
    ind_from, ind_to = pair_indices(3, (9, 11))
    flat = feat.flatten(2)
    num_from = ind_from.numel()
    for b in range(2):
        for j, t in enumerate(ind_to.tolist()):
            f = ind_from[j % num_from]
            expected = torch.exp(-(flat[b, :, t] - flat[b, :, f]).abs().mean())
            assert aff[b, j // num_from, j % num_from] == pytest.approx(expected.item(), abs=1e-12)


def label_samples(labels):
    return [SegDataSample(gt_sem_seg=PixelData(data=label[None]),
                          metainfo=dict(img_shape=tuple(label.shape))) for label in labels]


def random_affinity_labels(batch, height, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (batch, height // 16 + 1, width // 16 + 1), generator=g)
    labels = labels.repeat_interleave(16, 1).repeat_interleave(16, 2)[:, :height, :width]
    labels[:, :, :8] = 255  # unknown strip
    return labels


def test_head_forward_loss_and_gradients():
    torch.manual_seed(0)
    head = AffinityHead(in_channels=(8, 16, 32), branch_channels=(4, 4, 8), channels=12,
                        radius=3, in_index=(0, 1, 2))
    head.init_weights()
    inputs = [torch.randn(2, 8, 10, 12), torch.randn(2, 16, 10, 12), torch.randn(2, 32, 5, 6)]
    feat = head(inputs)
    assert feat.shape == (2, 12, 10, 12)
    assert not hasattr(head, 'conv_seg')
    assert head.predict_affinity(inputs).shape == (2, 12, (10 - 2) * (12 - 4))
    losses = head.loss(inputs, label_samples(random_affinity_labels(2, 80, 96)), None)
    assert set(losses) == {'loss_aff', 'aff_bg', 'aff_fg', 'aff_neg'}
    assert all(not losses[k].requires_grad for k in ('aff_bg', 'aff_fg', 'aff_neg'))
    weighted = losses['aff_bg'] / 4 + losses['aff_fg'] / 4 + losses['aff_neg'] / 2
    torch.testing.assert_close(losses['loss_aff'].detach(), weighted)
    losses['loss_aff'].backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_label_stride_mismatch_is_explained():
    head = AffinityHead(in_channels=(4, 4, 4), branch_channels=(2, 2, 2), channels=6)
    inputs = [torch.randn(1, 4, 12, 12)] * 3
    with pytest.raises(ValueError, match='set label_stride to the backbone output stride'):
        head.loss(inputs, label_samples(random_affinity_labels(1, 48, 48)), None)
    with pytest.raises(ValueError, match='one entry per input level'):
        AffinityHead(in_channels=(4, 4, 4), branch_channels=(2, 2))
    with pytest.raises(ValueError, match='one loss_decode dict'):
        AffinityHead(loss_decode=[dict(type='AffinityPairLoss')])


def test_reference_initialisation():
    torch.manual_seed(0)
    head = AffinityHead()
    head.init_weights()
    fuse = head.fuse_conv.conv.weight
    bound = 4 * (6 / (448 + 448))**0.5  # xavier_uniform, gain 4
    assert fuse.abs().max() <= bound and fuse.abs().max() > 0.9 * bound
    lateral = head.lateral_convs[2].conv.weight  # kaiming_normal, fan_in 4096
    assert lateral.std().item() == pytest.approx((2 / 4096)**0.5, rel=0.05)


@pytest.fixture(scope='module')
def affinity_net():
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='AffinityNet', backbone=R18_D8,
        decode_head=dict(type='AffinityHead', in_channels=(128, 256, 512), in_index=(1, 2, 3),
                         branch_channels=(8, 8, 16), channels=16, radius=3),
        test_cfg=ConfigDict(mode='whole')))


def test_affinity_net_trains_with_any_backbone(affinity_net):
    affinity_net.train()
    losses = affinity_net.loss(torch.randn(2, 3, 64, 80),
                               label_samples(random_affinity_labels(2, 64, 80)))
    assert {'decode.loss_aff', 'decode.aff_bg'} <= set(losses)
    assert torch.isfinite(losses['decode.loss_aff'])
    losses['decode.loss_aff'].backward()
    trainable = [n for n, p in affinity_net.named_parameters() if p.requires_grad]
    assert all(affinity_net.get_parameter(n).grad is not None for n in trainable)
    affinity_net.zero_grad()


def test_affinity_net_pads_to_the_stride_and_has_no_segmentation(affinity_net):
    affinity_net.eval()
    with torch.no_grad():
        aff = affinity_net.predict_affinity(torch.randn(1, 3, 61, 75))  # grid 8 x 10
    assert aff.shape == (1, 12, (8 - 2) * (10 - 4))
    assert ((aff > 0) & (aff <= 1)).all()
    with pytest.raises(NotImplementedError, match='predict_affinity'):
        affinity_net.predict(torch.randn(1, 3, 32, 32))
