# Copyright (c) mmaffseg contributors. All rights reserved.
import copy
import functools
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmaffseg  # noqa: F401
from mmaffseg.ops import pairwise_mask_iou

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'instance_embedding', '*.py')))
QUICKSTART = [c for c in CONFIGS if 'quickstart' in c][0]
CITYSCAPES = [c for c in CONFIGS if 'cityscapes' in c][0]
# Fathi et al. 2017's image pyramid: the feature extractor on the image at 0.25, 0.5, 1 and 2
# times its size, features averaged; part of their network, in training and inference.
PAPER_PYRAMID = (0.25, 0.5, 1.0, 2.0)
TINY = (48, 80)


pytestmark = pytest.mark.usefixtures('one_thread')


@functools.lru_cache(maxsize=None)
def _load(path):
    return Config.fromfile(path)


def _build(path=QUICKSTART, seed=0, **overrides):
    """The model of ``path`` with ``overrides``, its weights initialised from ``seed`` (the
    global RNG is left as it was: no test depends on the order tests run in)."""
    cfg = copy.deepcopy(_load(path))
    init_default_scope('mmseg')
    cfg.model.data_preprocessor.size = TINY
    cfg.model.pretrained = None
    cfg.model.update(overrides)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return revert_sync_batchnorm(MODELS.build(cfg.model))


def _sample(kind, size=TINY):
    """'two': a car and a person; 'one': a single car; 'empty': no instance; 'void': all void."""
    sem = torch.zeros(1, *size, dtype=torch.long)
    inst = torch.zeros(1, *size, dtype=torch.long)
    if kind in ('one', 'two'):
        sem[0, 5:25, 10:40], inst[0, 5:25, 10:40] = 13, 1
    if kind == 'two':
        sem[0, 28:44, 50:62], inst[0, 28:44, 50:62] = 11, 2
    if kind == 'void':
        sem[:], inst[:] = 255, 255
    s = SegDataSample()
    s.gt_sem_seg = PixelData(data=sem)
    s.gt_instance_map = PixelData(data=inst)
    s.set_metainfo(dict(img_shape=size, ori_shape=size))
    return s


def _batch(model, kinds, training=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, *TINY), generator=g, dtype=torch.uint8) for _ in kinds]
    return model.data_preprocessor(dict(inputs=inputs, data_samples=[_sample(k) for k in kinds]),
                                   training)


def test_one_train_step_reaches_every_parameter():
    torch.manual_seed(0)
    model = _build(cls_loss_weight=0.2)
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = _batch(model, ['two', 'one'])
    losses = model.loss(**data)
    assert set(losses) == {'loss_emb', 'loss_cls', 'cls_weight'}
    assert losses['cls_weight'].item() == pytest.approx(0.2)
    total = losses['loss_emb'] + losses['loss_cls']
    assert torch.isfinite(total)
    optim.update_params(total)
    # (the optimizer step zeroes gradients; check the update instead)
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged, unchanged
    # train_step as the runner calls it
    log = model.train_step(dict(inputs=[torch.zeros(3, *TINY, dtype=torch.uint8)],
                                data_samples=[_sample('two')]), optim)
    assert all(torch.isfinite(v) for v in log.values())


def test_lambda_scales_the_classification_loss():
    model = _build(cls_loss_weight=0.0)
    data = _batch(model, ['two'])
    torch.manual_seed(0)
    zero = model.loss(**data)
    model.cls_loss_weight = 0.5
    torch.manual_seed(0)
    half = model.loss(**data)
    assert zero['loss_cls'].item() == 0 and half['loss_cls'].item() > 0
    assert zero['loss_emb'].item() == pytest.approx(half['loss_emb'].item())


@pytest.mark.parametrize('kinds', [['empty', 'empty'], ['one', 'void'], ['void', 'void']])
def test_empty_and_single_instance_images_give_no_nan(kinds):
    model = _build(cls_loss_weight=0.2)
    losses = model.loss(**_batch(model, kinds))
    total = losses['loss_emb'] + losses['loss_cls']
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():
        out = model.predict(**_batch(model, kinds, training=False))
    for sample in out:
        assert torch.isfinite(sample.pred_instances.scores).all()


def test_predict_outputs_at_the_original_size():
    model = _build(test_cfg=dict(mode='whole', num_seeds=7, alpha=0.3, mask_chunk=3))
    model.eval()
    inputs = torch.randn(2, 3, *TINY, generator=torch.Generator().manual_seed(1))
    samples = [_sample('two'), _sample('one')]
    # the second image was 40x72, padded to TINY, flipped, and originally 60x90
    samples[1].set_metainfo(dict(img_shape=(40, 72), ori_shape=(60, 90),
                                 padding_size=[0, 8, 0, 8], flip=True,
                                 flip_direction='horizontal'))
    with torch.no_grad():
        out = model.predict(inputs, samples)
    for sample, shape in zip(out, [TINY, (60, 90)]):
        inst = sample.pred_instances
        n = len(inst)
        assert 0 < n <= 7
        assert inst.masks.shape == (n, *shape) and inst.masks.dtype == torch.bool
        assert inst.masks.flatten(1).any(1).all()  # no empty masks
        assert ((inst.labels >= 0) & (inst.labels < 8)).all()
        assert (inst.scores[:-1] >= inst.scores[1:]).all()  # sorted by score
        imap = sample.pred_instance_map.data[0]
        assert imap.shape == shape
        # every pixel shows the best-scoring mask covering it
        for i in range(n):
            covered = inst.masks[i] & ~inst.masks[:i].any(0)
            assert (imap[covered] == i + 1).all()
        assert (imap[~inst.masks.any(0)] == 0).all()
    # without data samples
    with torch.no_grad():
        plain = model.predict(inputs[:1])
    assert plain[0].pred_instance_map.data.shape == (1, *TINY)
    # tensor mode: raw outputs of both heads
    emb, logits = model._forward(inputs)
    assert emb.shape == (2, 64, TINY[0] // 4, TINY[1] // 4)
    assert logits.shape == (2, 4, 9, TINY[0] // 4, TINY[1] // 4)


def _paper_pyramid(model, inputs, scales):
    """The paper's pyramid written out: for each scale resize the image, extract features,
    resize every feature map back to its scale-1 size, average; then both heads."""
    def extract(images):
        return model.neck(model.backbone(images))

    reference = extract(inputs)
    total = [torch.zeros_like(f) for f in reference]
    for factor in scales:
        size = (round(inputs.shape[2] * factor), round(inputs.shape[3] * factor))
        images = inputs if factor == 1.0 else F.interpolate(inputs, size, mode='bilinear')
        for i, f in enumerate(extract(images)):
            if f.shape[-2:] != reference[i].shape[-2:]:
                f = F.interpolate(f, reference[i].shape[-2:], mode='bilinear')
            total[i] = total[i] + f
    mean = [t / len(scales) for t in total]
    return model.decode_head(mean), model.seediness_head(mean).softmax(2)


def test_multi_scale_averages_features_as_the_paper():
    single = _build(test_cfg=dict(mode='whole', num_seeds=5))
    multi = _build(test_cfg=dict(mode='whole', num_seeds=5, scales=(0.5, 1.0, 2.0)))
    multi.load_state_dict(single.state_dict())
    single.eval(), multi.eval()
    assert multi.test_cfg['scale_fusion'] == 'features'  # the paper's form is the default
    inputs = torch.randn(2, 3, *TINY, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        emb, probs = single._multi_scale_outputs(inputs)
        logits = single.head_outputs(inputs)[1]
        torch.testing.assert_close(probs, logits.softmax(2))  # one scale: one pass
        expect_emb, expect_probs = _paper_pyramid(single, inputs, (0.5, 1.0, 2.0))
        got_emb, got_probs = multi._multi_scale_outputs(inputs)
        torch.testing.assert_close(got_emb, expect_emb)
        torch.testing.assert_close(got_probs, expect_probs)
        # not the average of the heads' outputs
        outputs = _build(test_cfg=dict(mode='whole', scales=(0.5, 1.0, 2.0),
                                       scale_fusion='outputs'))
        outputs.load_state_dict(single.state_dict())
        outputs.eval()
        assert (outputs._multi_scale_outputs(inputs)[0] - got_emb).abs().max() > 1e-3
        out = multi.predict(inputs, [_sample('two'), _sample('one')])
    assert out[0].pred_instance_map.data.shape == (1, *TINY)


def test_training_averages_the_pyramid_features():
    """With train_cfg.scales the heads are trained on the pyramid's averaged features (the
    paper's network), not on the scale-1 features."""
    model = _build(train_cfg=dict(scales=(0.5, 1.0, 2.0)), cls_loss_weight=0.2)
    model.eval()  # deterministic features (BN statistics, no dropout) to compare
    seen = []
    model.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-2:]))
    captured = []
    model.decode_head.register_forward_hook(lambda m, args, out: captured.append(out))
    data = _batch(model, ['two', 'one'])
    with torch.no_grad():
        losses = model.loss(**data)
    assert torch.isfinite(losses['loss_emb'] + losses['loss_cls'])
    assert sorted(tuple(s) for s in seen) == [
        (TINY[0] // 2, TINY[1] // 2), TINY, (TINY[0] * 2, TINY[1] * 2)]
    with torch.no_grad():
        expect = _paper_pyramid(model, data['inputs'], (0.5, 1.0, 2.0))[0]
    torch.testing.assert_close(captured[0], expect)
    with pytest.raises(ValueError, match=r'train_cfg.scales must be positive and include 1.0'):
        _build(train_cfg=dict(scales=(0.5, 2.0)))


def test_cityscapes_config_uses_the_papers_pyramid():
    """The Cityscapes config is the paper's recipe: its pyramid in training and inference,
    features averaged; the CPU quick start stays single scale."""
    model = _build(CITYSCAPES)
    assert model.train_cfg['scales'] == PAPER_PYRAMID
    assert model.test_cfg['scales'] == PAPER_PYRAMID
    assert model.test_cfg['scale_fusion'] == 'features'
    quick = _build()
    assert quick.train_cfg['scales'] == quick.test_cfg['scales'] == (1.0, )


def test_tensor_mode_runs_the_configured_pyramid():
    """forward(mode='tensor') and head_outputs (what FLOP counters and the diagnostics tool run)
    give the heads the pyramid's averaged features, the features they were trained on."""
    model = _build(train_cfg=dict(scales=(0.5, 1.0, 2.0)),
                   test_cfg=dict(mode='whole', num_seeds=5, scales=(0.5, 1.0, 2.0)))
    model.eval()
    seen = []
    model.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-2:]))
    inputs = torch.randn(1, 3, *TINY, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        emb, logits = model(inputs, mode='tensor')
        seen_tensor_mode = sorted(tuple(s) for s in seen)
        expect = _paper_pyramid(model, inputs, (0.5, 1.0, 2.0))
        single = model.head_outputs(inputs, scales=(1.0, ))
    assert seen_tensor_mode == [(TINY[0] // 2, TINY[1] // 2), TINY, (TINY[0] * 2, TINY[1] * 2)]
    torch.testing.assert_close(emb, expect[0])
    torch.testing.assert_close(logits.softmax(2), expect[1])
    assert (single[0] - emb).abs().max() > 1e-4  # one pass differs from the pyramid


def test_multi_scale_option_averages_head_outputs():
    single = _build(test_cfg=dict(mode='whole', num_seeds=5))
    multi = _build(test_cfg=dict(mode='whole', num_seeds=5, scales=(0.5, 1.0, 2.0),
                                 scale_fusion='outputs'))
    multi.load_state_dict(single.state_dict())
    single.eval(), multi.eval()
    inputs = torch.randn(2, 3, *TINY, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        emb, probs = single._multi_scale_outputs(inputs)
        expect_emb, expect_probs = emb.clone(), probs.clone()
        for size in [(TINY[0] // 2, TINY[1] // 2), (TINY[0] * 2, TINY[1] * 2)]:
            e, lg = single.head_outputs(F.interpolate(inputs, size, mode='bilinear'),
                                        scales=(1.0, ))
            expect_emb += F.interpolate(e, emb.shape[-2:], mode='bilinear')
            expect_probs += F.interpolate(lg.softmax(2).flatten(1, 2), emb.shape[-2:],
                                          mode='bilinear').view_as(probs)
        got_emb, got_probs = multi._multi_scale_outputs(inputs)
        torch.testing.assert_close(got_emb, expect_emb / 3)
        torch.testing.assert_close(got_probs, expect_probs / 3)
        torch.testing.assert_close(got_probs.sum(2), torch.ones_like(got_probs[:, :, 0]))
    with pytest.raises(ValueError, match='must be positive and include 1.0'):
        _build(test_cfg=dict(mode='whole', scales=(0.5, 2.0)))
    with pytest.raises(ValueError, match=r"scale_fusion must be one of .*'logits'"):
        _build(test_cfg=dict(mode='whole', scale_fusion='logits'))
    with pytest.raises(ValueError, match=r'mask_nms_thr must be None \(no NMS\) or an IoU'):
        _build(test_cfg=dict(mode='whole', mask_nms_thr=1.5))


def test_optional_mask_nms_drops_overlapping_masks():
    plain = _build(test_cfg=dict(mode='whole', num_seeds=20, alpha=0.3, mask_nms_thr=None))
    nms = _build(test_cfg=dict(mode='whole', num_seeds=20, alpha=0.3, mask_nms_thr=0.3))
    nms.load_state_dict(plain.state_dict())
    plain.eval(), nms.eval()
    inputs = torch.randn(1, 3, *TINY, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = plain.predict(inputs, [_sample('two')])[0].pred_instances
        after = nms.predict(inputs, [_sample('two')])[0].pred_instances
    assert 0 < len(after) < len(before)
    # the kept masks are a score-ordered subset of the plain ones ...
    kept = [int((before.scores == s).nonzero()[0]) for s in after.scores]
    assert kept == sorted(kept) and kept[0] == 0
    torch.testing.assert_close(before.masks[kept], after.masks)
    # ... and no two overlap above the threshold (checked here at the output size)
    iou = pairwise_mask_iou(after.masks.flatten(1))
    assert (iou.triu(1) <= 0.3 + 0.05).all()


def test_masks_undo_padding_and_flip():
    model = _build()
    sim = torch.zeros(1, 4, 8)
    sim[..., :4] = 1.0  # similar on the left half of the network input
    tau = torch.tensor([0.5])
    flipped = model._masks_at_original_size(
        sim, tau, dict(ori_shape=(4, 8), flip=True, flip_direction='horizontal'), (4, 8))
    assert flipped[0, :, 4:].all() and not flipped[0, :, :4].any()
    # the right half was padding: the left half is the whole image, stretched to 4x8
    cropped = model._masks_at_original_size(
        sim, tau, dict(ori_shape=(4, 8), padding_size=[0, 4, 0, 0]), (4, 8))
    assert cropped.all()


def test_every_config_builds_and_computes_a_loss():
    for path in CONFIGS:
        model = _build(path, cls_loss_weight=0.2)
        # two images: the Cityscapes pyramid's 0.25 scale leaves 1x1 maps in the last stage
        losses = model.loss(**_batch(model, ['two', 'one']))
        assert torch.isfinite(losses['loss_emb'] + losses['loss_cls']), path
        cfg = _load(path)
        assert [e.type for e in cfg.val_evaluator] == ['InstanceAPMetric',
                                                      'CityscapesInstanceMetric']
        assert cfg.custom_hooks[0].type == 'LossWeightRampHook'


def test_quickstart_departs_from_the_paper_only_where_documented():
    for path in CONFIGS:
        model = _load(path).model
        weight = model.seediness_head.loss_decode.get('class_weight')
        nms = model.test_cfg.get('mask_nms_thr')
        if 'quickstart' in path:  # mask NMS 0.5, selected on held-back training images
            assert weight is None and nms == 0.5
        else:  # the paper: plain cross-entropy, no NMS, lambda ramped to 0.2
            assert weight is None and nms is None
            assert _load(path).custom_hooks[0].end_value == 0.2


def test_holdout_config_selects_on_held_back_training_images(tiny_synthetic_root):
    from helpers import tiny_synthetic_overrides
    from mmseg.registry import DATASETS
    holdout = [c for c in CONFIGS if 'holdout' in c][0]
    cfg = copy.deepcopy(_load(holdout))
    cfg.merge_from_dict(tiny_synthetic_overrides(tiny_synthetic_root))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.holdout_every = 3
    init_default_scope('mmseg')
    files = {}
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = DATASETS.build(cfg[name].dataset)
        files[name] = [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]
    assert len(files['train_dataloader']) == 4 and len(files['val_dataloader']) == 2
    assert files['val_dataloader'] == files['test_dataloader']
    assert not set(files['train_dataloader']) & set(files['val_dataloader'])
    assert all('/leftImg8bit/train/' in f for f in files['val_dataloader'])
    # the shipped quick-start reports on the untouched validation images
    shipped = _load(QUICKSTART)
    for name in ('val_dataloader', 'test_dataloader'):
        assert shipped[name].dataset.data_prefix.img_path == 'leftImg8bit/val'
        assert shipped[name].dataset.get('holdout') is None
    assert shipped.train_dataloader.dataset.get('holdout') is None


def test_errors():
    with pytest.raises(ValueError, match='seediness_head.num_classes'):
        _build(thing_class_ids=(11, 12))
    with pytest.raises(ValueError, match='only test_cfg.mode="whole"'):
        _build(test_cfg=dict(mode='slide'))


def test_auxiliary_head_none_drops_a_base_models_auxiliary_head():
    """The drop-in card sets auxiliary_head=None over an mmseg model that may have one."""
    assert not _build(auxiliary_head=None).with_auxiliary_head
    with pytest.raises(ValueError, match='has no auxiliary head.*set auxiliary_head=None'):
        _build(auxiliary_head=dict(type='FCNHead', in_channels=256, channels=64,
                                   num_classes=19))


@pytest.mark.slow
def test_runner_trains_and_evaluates_on_the_tiny_dataset(tiny_synthetic_root, tmp_path):
    from helpers import tiny_synthetic_overrides

    from mmaffseg.cli import build_runner, load_config
    opts = tiny_synthetic_overrides(tiny_synthetic_root)
    opts.update({
        'work_dir': str(tmp_path),
        'train_cfg.max_iters': 2,
        'train_cfg.val_interval': 2,
        'train_dataloader.dataset.pipeline.4.crop_size': (64, 128),
        'model.data_preprocessor.size': (64, 128),
        'custom_hooks.0.end': 2,
        'model.test_cfg.num_seeds': 10,
    })
    cfg = load_config(QUICKSTART, opts)
    runner = build_runner(cfg)
    runner.train()
    assert runner.model.cls_loss_weight == pytest.approx(0.1)  # set before iteration 1 of 0..1
    metrics = runner.val_loop.run()
    assert {'AP50', 'AP60', 'AP70', 'AP', 'AR@10', 'AR@50', 'AR@100'} <= set(metrics)
