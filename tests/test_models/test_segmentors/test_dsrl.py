# Copyright (c) mmaffseg contributors. All rights reserved.
"""DSRLEncoderDecoder: training losses and gradients, test path, export, bad configs."""
import copy

import pytest
import torch
from benchmarks.dsrl import baseline_model_cfg
from converters.dsrl_converter import strip_training_branches
from fa_reference import naive_fa
from mmengine.analysis import FlopAnalyzer
from mmengine.config import ConfigDict
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmaffseg.models.segmentors import DSRLEncoderDecoder

NUM_CLASSES = 5
NORM = dict(type='BN', requires_grad=True)
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def tiny_cfg(**overrides) -> dict:
    """A DeepLabV3+ on a thin ResNet-18 (stage channels 8/16/32/64) wrapped by DSRL."""
    cfg = dict(
        type='DSRLEncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=MEAN, std=STD, bgr_to_rgb=True,
                               size_divisor=1, pad_val=0, seg_pad_val=255),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=16, base_channels=8,
                      out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
                      norm_cfg=NORM, contract_dilation=True),
        decode_head=dict(type='DepthwiseSeparableASPPHead', in_channels=64, in_index=3,
                         channels=16, dilations=(1, 2, 3, 4), c1_in_channels=8, c1_channels=4,
                         dropout_ratio=0.0, num_classes=NUM_CLASSES, norm_cfg=NORM,
                         align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        auxiliary_head=dict(type='FCNHead', in_channels=32, in_index=2, channels=8,
                            num_convs=1, concat_input=False, dropout_ratio=0.0,
                            num_classes=NUM_CLASSES, norm_cfg=NORM,
                            loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
        sr_decoder=dict(type='SRDecoder', in_channels=(8, 64), in_index=(0, 3), channels=8,
                        upsample_channels=(8, 8, 4), norm_cfg=NORM),
        feature_transform=dict(norm_cfg=NORM, act_cfg=dict(type='ReLU')),
        loss_fa=dict(type='FeatureAffinityLoss', subsample_factor=1 / 4, loss_weight=1.0),
        train_cfg=ConfigDict(),
        test_cfg=ConfigDict(mode='whole'))
    cfg.update(overrides)
    return cfg


def baseline_cfg() -> dict:
    """The same backbone and heads as a plain mmseg EncoderDecoder."""
    cfg = baseline_model_cfg(tiny_cfg())
    assert set(tiny_cfg()) - set(cfg) == {'sr_decoder', 'feature_transform', 'loss_fa'}
    return cfg


def build(cfg: dict) -> DSRLEncoderDecoder:
    init_default_scope('mmseg')  # the preprocessor and heads are looked up in mmseg's scope
    torch.manual_seed(0)
    return MODELS.build(copy.deepcopy(cfg))


def raw_batch(sizes, seed=0) -> dict:
    """uint8 images and labels as the dataloader yields them (before the preprocessor)."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, NUM_CLASSES, (1, h, w), generator=g))
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def count_calls(modules):
    calls = []
    handles = [
        m.register_forward_hook(lambda mod, args, out: calls.append(mod)) for root in modules
        for m in root.modules()
    ]
    return calls, handles


def test_losses_and_every_parameter_gets_a_gradient():
    model = build(tiny_cfg())
    model.train()
    data = model.data_preprocessor(raw_batch([(32, 64)] * 2), training=True)
    losses = model.loss(**data)
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg',
                           'dsrl.loss_sr', 'dsrl.loss_fa'}
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.grad is None or p.grad.abs().sum() == 0]
    assert not no_grad, f'parameters without gradient: {no_grad}'
    dsrl_params = [n for n, _ in model.named_parameters()
                   if n.startswith(('sr_decoder.', 'feature_transform.'))]
    assert len(dsrl_params) > 10


def test_fa_and_sr_losses_reach_the_sisr_branch_and_the_encoder():
    """Both auxiliary losses optimise the SISR decoder and the shared encoder; FA reaches
    the feature transform and the segmentation head."""
    model = build(tiny_cfg())
    data = model.data_preprocessor(raw_batch([(32, 64)] * 2), training=True)
    for key, reached, not_reached in (
        ('dsrl.loss_sr', ('sr_decoder.', 'backbone.'), ('feature_transform.', 'decode_head.')),
        ('dsrl.loss_fa', ('sr_decoder.', 'feature_transform.', 'decode_head.', 'backbone.'),
         ('sr_decoder.to_image.', 'auxiliary_head.')),
    ):
        model.zero_grad(set_to_none=True)
        model.loss(**data)[key].backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        for prefix in reached:
            assert any(g is not None and g.abs().sum() > 0
                       for n, g in grads.items() if n.startswith(prefix)), (key, prefix)
        for prefix in not_reached:
            assert all(g is None for n, g in grads.items() if n.startswith(prefix)), (key, prefix)


def test_train_step_updates_sisr_parameters():
    model = build(tiny_cfg())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log_vars = model.train_step(raw_batch([(32, 64)] * 2, seed=1), optim)
    assert {'loss', 'dsrl.loss_sr', 'dsrl.loss_fa'} <= set(log_vars)
    for n, p in model.named_parameters():
        if n.startswith(('sr_decoder.', 'feature_transform.')) and p.requires_grad:
            assert not torch.equal(before[n], p.detach()), f'{n} was not updated'


@pytest.mark.parametrize('size', [(32, 64), (67, 93), (33, 47)])
def test_output_resolution_is_the_original_size(size):
    model = build(tiny_cfg()).eval()
    inputs = torch.randn(1, 3, *size)
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        assert logits.shape == (1, NUM_CLASSES, *size)
        assert model.downsample(inputs).shape[2:] == model.network_input_size(size)
        data = model.data_preprocessor(raw_batch([size], seed=2), training=False)
        pred = model.predict(**data)[0]
    assert pred.pred_sem_seg.shape == size
    assert pred.seg_logits.shape == size


def test_sisr_and_feature_transform_are_never_called_at_inference():
    model = build(tiny_cfg())
    calls, handles = count_calls([model.sr_decoder, model.feature_transform])
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(raw_batch([(64, 96)]), training=False)
        model.predict(**data)
        model.test_step(raw_batch([(48, 80)], seed=3))
        model.val_step(raw_batch([(48, 80)], seed=4))
        model(data['inputs'], mode='tensor')
    assert calls == []
    model.train()
    model.loss(**model.data_preprocessor(raw_batch([(32, 64)] * 2), training=True))
    assert len(calls) > 0  # the hooks do fire when the branch runs
    for h in handles:
        h.remove()


def test_sisr_target_is_the_unnormalised_image_and_padding_is_masked():
    model = build(tiny_cfg(data_preprocessor=dict(
        type='SegDataPreProcessor', mean=MEAN, std=STD, bgr_to_rgb=True, size=(40, 48))))
    raw = raw_batch([(32, 48), (40, 40)], seed=5)
    data = model.data_preprocessor(copy.deepcopy(raw), training=True)
    inputs = data['inputs']
    assert inputs.shape[2:] == (40, 48)  # padded at the bottom / right
    target = model.sr_target(inputs)
    mask = model.valid_mask(inputs, data['data_samples'])
    for i, img in enumerate(raw['inputs']):
        h, w = img.shape[1:]
        rgb = img.flip(0).float() / 255  # bgr_to_rgb=True in the preprocessor
        torch.testing.assert_close(target[i, :, :h, :w], rgb, atol=1e-5, rtol=0)
        assert mask[i, 0, :h, :w].all() and mask[i].sum() == h * w


def test_fa_loss_counts_only_the_unpadded_positions():
    """Padded samples (as RandomResize + crop make them): FA is the paper's formula over each
    sample's valid cells, computed naively from the two maps the model compared."""
    model = build(tiny_cfg(data_preprocessor=dict(
        type='SegDataPreProcessor', mean=MEAN, std=STD, bgr_to_rgb=True, size=(40, 48))))
    data = model.data_preprocessor(raw_batch([(30, 45), (40, 37)], seed=6), training=True)
    assert data['inputs'].shape[2:] == (40, 48)
    compared = []
    handle = model.loss_fa.register_forward_hook(lambda mod, args, out: compared.append(args))
    losses = model.loss(**data)
    handle.remove()
    seg, sr = (t.detach() for t in compared[0][:2])
    img_shapes = [s.img_shape for s in data['data_samples']]
    expected = naive_fa(seg, sr, 4, 'avg', img_shapes).mean().item()
    assert losses['dsrl.loss_fa'].item() == pytest.approx(expected, rel=1e-5)
    over_padding = naive_fa(seg, sr, 4, 'avg').mean().item()  # what ignoring the mask gives
    assert abs(over_padding - expected) > 1e-3


def test_drop_training_branches_matches_baseline_plus_sssr_parameters():
    def n_params(m):
        return sum(p.numel() for p in m.parameters())

    baseline = build(baseline_cfg())
    for sssr_cfg, sssr_params in (
        (None, 0),
        (dict(type='pixel_shuffle', upsample_kernel=3),
         NUM_CLASSES * NUM_CLASSES * 4 * 9 + NUM_CLASSES * 4),
    ):
        model = build(tiny_cfg(sssr_upsample_cfg=sssr_cfg))
        assert n_params(model.sssr) == sssr_params
        assert n_params(model) > n_params(baseline) + sssr_params
        model.eval()
        inputs = torch.randn(1, 3, 64, 96)
        with torch.no_grad():
            before = model(inputs, mode='tensor')
        full_state = model.state_dict()
        model.drop_training_branches()
        assert not model.with_sisr and not model.with_fa
        assert n_params(model) == n_params(baseline) + sssr_params
        with torch.no_grad():
            torch.testing.assert_close(model(inputs, mode='tensor'), before)
        # a trained checkpoint, stripped, loads strictly into the lean test model
        lean = build(tiny_cfg(sssr_upsample_cfg=sssr_cfg, sr_decoder=None))
        lean.load_state_dict(strip_training_branches(full_state), strict=True)
        assert n_params(lean) == n_params(baseline) + sssr_params


def test_test_path_flops_equal_baseline_at_half_input_plus_sssr():
    """FLOPs of DSRL at HxW = baseline at H/2 x W/2 + the two resizes (no SISR, no FA)."""
    size, half = (64, 96), (32, 48)
    model = build(tiny_cfg()).eval()
    baseline = build(baseline_cfg()).eval()
    with torch.no_grad():
        dsrl = FlopAnalyzer(model, (torch.randn(1, 3, *size), ))
        base = FlopAnalyzer(baseline, (torch.randn(1, 3, *half), ))
        dsrl_mod, base_mod = dsrl.by_module(), base.by_module()
    for name in ('backbone', 'decode_head'):
        assert dsrl_mod[name] == base_mod[name] > 0
    for name in ('sr_decoder', 'feature_transform', 'auxiliary_head'):
        assert dsrl_mod[name] == 0
    assert dsrl_mod['sssr'] > 0
    # the baseline's tensor output stays at the head's stride; DSRL's is resized to the input
    # (SSSR) and the input itself is resized (downsampling): only those ops add FLOPs.
    extra = dsrl.total() - base.total()
    resize_ops = {k: v for k, v in dsrl.by_operator().items() if 'upsample' in k}
    assert extra == sum(resize_ops.values()) - sum(
        v for k, v in base.by_operator().items() if 'upsample' in k)
    assert extra < 0.05 * base.total()


def test_bad_configs_fail_clearly():
    with pytest.raises(ValueError, match=r'divisible by 8, but data_preprocessor.size=\(60, 96\)'):
        build(tiny_cfg(
            data_preprocessor=dict(type='SegDataPreProcessor', mean=MEAN, std=STD, size=(60, 96)),
            loss_fa=dict(type='FeatureAffinityLoss', subsample_factor=1 / 8)))
    model = build(tiny_cfg(loss_fa=dict(type='FeatureAffinityLoss', subsample_factor=1 / 8)))
    with pytest.raises(ValueError, match=r'divisible by 8, got 36x64'):
        model.loss(**model.data_preprocessor(raw_batch([(36, 64)] * 2), training=True))
    with pytest.raises(ValueError, match=r'feature_transform out_channels=3 does not match the '
                       r'SSSR output channels \(5\)'):
        build(tiny_cfg(feature_transform=dict(out_channels=3, norm_cfg=NORM)))
    with pytest.raises(ValueError, match=r'feature_transform in_channels=16 does not match the '
                       r'SISR features channels \(4\)'):
        build(tiny_cfg(feature_transform=dict(in_channels=16)))
    wrong_in = tiny_cfg()
    wrong_in['sr_decoder'] = dict(wrong_in['sr_decoder'], in_channels=(8, 128))
    model = build(wrong_in)
    with pytest.raises(ValueError, match='SRDecoder expects 128 channels from encoder output 3, '
                       'got 64'):
        model.loss(**model.data_preprocessor(raw_batch([(32, 64)] * 2), training=True))
    two_stages = tiny_cfg()
    two_stages['sr_decoder'] = dict(two_stages['sr_decoder'], upsample_channels=(8, 4))
    model = build(two_stages)
    with pytest.raises(ValueError, match=r'turn the 4x8 encoder map into 16x32, but the image '
                       r'to reconstruct is 32x64 \(x8\)'):
        model.loss(**model.data_preprocessor(raw_batch([(32, 64)] * 2), training=True))
    with pytest.raises(ValueError, match=r'downsample_factor must be in \(0, 1\]'):
        build(tiny_cfg(downsample_factor=2))
    with pytest.raises(ValueError, match='integer 1 / downsample_factor, got 3.33'):
        build(tiny_cfg(downsample_factor=0.3,
                       sssr_upsample_cfg=dict(type='pixel_shuffle')))
    with pytest.raises(ValueError, match="fa_sr_source must be one of"):
        build(tiny_cfg(fa_sr_source='logits'))


def test_fa_on_reconstructed_image_and_sssr_only_variants():
    model = build(tiny_cfg(fa_sr_source='image'))
    assert model.feature_transform.conv.in_channels == 3
    losses = model.loss(**model.data_preprocessor(raw_batch([(32, 64)] * 2), training=True))
    assert torch.isfinite(losses['dsrl.loss_fa'])
    no_fa = build(tiny_cfg(loss_fa=None))
    assert no_fa.with_sisr and not no_fa.with_fa
    losses = no_fa.loss(**no_fa.data_preprocessor(raw_batch([(32, 64)] * 2), training=True))
    assert 'dsrl.loss_sr' in losses and 'dsrl.loss_fa' not in losses
    sssr_only = build(tiny_cfg(sr_decoder=None))
    losses = sssr_only.loss(
        **sssr_only.data_preprocessor(raw_batch([(32, 64)] * 2), training=True))
    assert not any(k.startswith('dsrl.') for k in losses)


def test_strip_tool_output_loads_into_the_lean_model(tmp_path):
    from converters.checkpoint_conversion import converter_main
    model = build(tiny_cfg())
    src, dst = str(tmp_path / 'dsrl.pth'), str(tmp_path / 'lean.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(iter=1)), src)
    converter_main(strip_training_branches, 'strip', argv=[src, dst])
    state = torch.load(dst, weights_only=True)['state_dict']
    assert not any(k.startswith(('sr_decoder.', 'feature_transform.')) for k in state)
    build(tiny_cfg(sr_decoder=None)).load_state_dict(state, strict=True)
