# Copyright (c) mmaffseg contributors. All rights reserved.
"""configs/psa: official PSA settings, consistent folders between the steps, the R-50-D8
variants build and run, the synthetic demo configs train one iteration."""
import copy
import functools
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from helpers import tiny_synthetic_overrides
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmaffseg.cli import build_runner, load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PSA = osp.join(REPO, 'configs', 'psa')
CONFIGS = sorted(glob.glob(osp.join(PSA, '*.py')))


@functools.lru_cache(maxsize=None)
def _parse(path: str) -> Config:
    return Config.fromfile(path)  # parsing dominates this file's runtime: once per config


def cfg_of(name: str) -> Config:
    return copy.deepcopy(_parse(osp.join(PSA, name)))


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_every_config_parses_with_mmaffseg(path):
    cfg = _parse(path)
    assert 'mmaffseg' in cfg.custom_imports.imports
    for key in ('aff_model', ):
        if cfg.get('test_cfg') and isinstance(cfg.test_cfg.get(key), str):
            assert osp.isfile(cfg.test_cfg[key])


@pytest.mark.parametrize('backbone', ['resnet38', 'r50'])
def test_official_training_settings(backbone):
    for step, iters in (('cam', 9920), ('affinitynet', 10576)):
        batch = '4xb4' if step == 'cam' else '4xb2'
        cfg = cfg_of(f'psa-{step}_{backbone}-d8_{batch}-10k_voc12aug-448x448.py')
        optimizer = {k: v for k, v in cfg.optim_wrapper.optimizer.items() if k != '_scope_'}
        assert optimizer == dict(type='SGD', lr=0.1, momentum=0.0, weight_decay=5e-4)
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys.decode_head.lr_mult == 10
        assert cfg.param_scheduler[0].power == 0.9 and cfg.param_scheduler[0].end == iters
        assert cfg.train_cfg.max_iters == iters
        bb = cfg.model.backbone
        assert bb.frozen_stages == 1 and bb.norm_eval and not bb.norm_cfg.requires_grad
        assert cfg.train_dataloader.dataset.type == 'ConcatDataset'  # train + aug = 10582
        assert cfg.model.data_preprocessor.size == (448, 448)
    r38 = cfg_of('psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py').model.decode_head
    assert (r38.num_convs, r38.channels, r38.num_classes) == (0, 4096, 20)


@pytest.mark.parametrize('backbone', ['resnet38', 'r50'])
def test_step_folders_agree(backbone):
    """Each step reads what the previous step writes with the default --out."""
    runner_cfg = f'psa-pseudo-labels_{backbone}-d8_voc12aug.py'
    out = osp.normpath(osp.join(REPO, 'work_dirs', runner_cfg[:-3], 'pseudo_labels'))
    aff = cfg_of(f'psa-affinitynet_{backbone}-d8_4xb2-10k_voc12aug-448x448.py')
    for ds in aff.train_dataloader.dataset.datasets:
        assert osp.normpath(ds.data_prefix.seg_map_path) == osp.join(out, 'affinity_labels')
    runner = cfg_of(runner_cfg)
    assert runner.test_cfg.type == 'PseudoLabelLoop'
    assert runner.test_evaluator.type == 'PseudoLabelMetric'
    assert osp.basename(runner.test_cfg.aff_model) == osp.basename(aff.filename)
    if backbone == 'resnet38':
        for name in ('deeplabv2_r101-d8_4xb4-20k_voc12aug-psa-pseudo-512x512.py',
                     'psa-seg_resnet38-d8_4xb4-20k_voc12aug-psa-pseudo-512x512.py'):
            for ds in cfg_of(name).train_dataloader.dataset.datasets:
                assert osp.normpath(ds.data_prefix.seg_map_path) == osp.join(out, 'rw_crf')
        seg = cfg_of('psa-seg_resnet38-d8_4xb4-20k_voc12aug-psa-pseudo-512x512.py').model
        assert seg.decode_head.type == 'PSASegHead' and seg.decode_head.channels == 512
        assert seg.decode_head.dilation == 12 and seg.decode_head.in_channels == 4096


def test_r50_variants_build_and_run():
    init_default_scope('mmseg')
    torch.manual_seed(0)
    size = (64, 72)
    for name in ('psa-cam_r50-d8_4xb4-10k_voc12aug-448x448.py',
                 'psa-affinitynet_r50-d8_4xb2-10k_voc12aug-448x448.py'):
        cfg = cfg_of(name)
        cfg.model.pretrained = None
        cfg.model.data_preprocessor.size = size
        model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            if 'cam' in name:
                assert model.forward_cam(x).shape == (1, 20, 8, 9)
            else:  # 34 radius-5 pairs; from-pixels (8 - 4) x (9 - 8)
                assert model.predict_affinity(x).shape == (1, 34, 4)


def _loss_step(cfg, root, labels):
    """One training iteration of a synthetic demo config on the tiny data."""
    cfg.merge_from_dict({k: v for k, v in tiny_synthetic_overrides(root).items()
                         if k.startswith('train_dataloader')})
    cfg.merge_from_dict({'train_cfg.max_iters': 1, 'default_hooks.checkpoint.interval': 1000})
    cfg.train_dataloader.dataset.data_prefix.seg_map_path = labels
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = build_runner(cfg)
    runner.train()
    return runner.message_hub.get_scalar('train/loss').current()


@pytest.mark.parametrize('step', ['cam', 'affinitynet'])
def test_synthetic_demo_configs_train(step, tiny_synthetic_root, tmp_path):
    path = osp.join(PSA, f'psa-{step}_r18-d8-slim_quickstart_synthetic-wsss-128x256.py')
    cfg = load_config(path)
    cfg.work_dir = str(tmp_path)
    if step == 'affinitynet':  # ground-truth WSSS labels stand in for affinity labels
        cfg.train_dataloader.dataset.map_labels = True
    loss = _loss_step(cfg, tiny_synthetic_root, 'gtFine/train')
    assert np.isfinite(loss) and loss > 0


def test_cam_classifier_predicts_wsss_labels():
    """CAM validation: background 0 and the 8 thing classes 1..8 (9-class IoUMetric)."""
    init_default_scope('mmseg')
    cfg = cfg_of('psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py')
    model = MODELS.build(cfg.model).eval()
    meta = dict(ori_shape=(32, 48), img_shape=(32, 48), pad_shape=(32, 48),
                gt_class_labels=np.eye(8, dtype=np.float32)[2])
    sample = SegDataSample(metainfo=meta)
    sample.gt_sem_seg = PixelData(data=torch.zeros(1, 32, 48, dtype=torch.long))
    with torch.no_grad():
        pred = model.predict(torch.randn(1, 3, 32, 48), [sample])[0].pred_sem_seg.data
    assert set(pred.unique().tolist()) <= {0, 3}  # class 2 only -> label 3


# ------------------------------------------------------------------ official recipe numbers
PSA_JITTER = dict(type='ColorJitter', brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1)


def _plain(step: dict) -> dict:
    return {k: v for k, v in step.items() if k != '_scope_'}


@pytest.mark.parametrize('backbone', ['resnet38', 'r50'])
def test_cam_training_augmentation_is_train_cls(backbone):
    """jiwoon-ahn/psa train_cls.py: RandomResizeLong(256, 512) (PIL bicubic), flip,
    ColorJitter(0.3, 0.3, 0.3, 0.1), imutils.RandomCrop(448); labels from cls_labels, no
    masks."""
    cfg = cfg_of(f'psa-cam_{backbone}-d8_4xb4-10k_voc12aug-448x448.py')
    for ds in cfg.train_dataloader.dataset.datasets:
        steps = [_plain(s) for s in ds.pipeline]
        assert [s['type'] for s in steps] == [
            'LoadImageFromFile', 'LoadImageLevelLabels', 'RandomResize', 'RandomFlip',
            'ColorJitter', 'RandomCanvasCrop', 'PackSegInputs'
        ]
        assert steps[1]['label_file'] == 'data/VOCdevkit/VOC2012/cls_labels.json'
        assert steps[1]['num_classes'] == 20
        resize = steps[2]
        assert resize['scale'] == (256, 256) and resize['keep_ratio']
        assert resize['ratio_range'] == (1.0, 513 / 256)
        assert (resize['backend'], resize['interpolation']) == ('pillow', 'bicubic')
        assert steps[3]['prob'] == 0.5
        assert steps[4] == PSA_JITTER
        assert steps[5]['crop_size'] == (448, 448)
        assert 'gt_class_labels' in steps[6]['meta_keys']


def test_cam_long_side_is_uniform_over_256_to_512():
    """The configured RandomResize gives RandomResizeLong(256, 512)'s long sides."""
    init_default_scope('mmseg')
    from mmseg.registry import TRANSFORMS
    cfg = cfg_of('psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py')
    resize = TRANSFORMS.build(cfg.train_dataloader.dataset.datasets[0].pipeline[2])
    img = np.zeros((15, 20, 3), np.uint8)  # landscape 3:4, as most VOC images
    state = np.random.get_state()
    try:
        np.random.seed(0)
        scales = [resize._random_scale() for _ in range(3000)]  # what transform() samples
        for _ in range(10):  # and the resized images have that long side
            np.random.seed(len(scales) + _)
            target = resize._random_scale()[0]
            np.random.seed(len(scales) + _)
            out = resize(dict(img=img.copy(), img_shape=img.shape[:2]))['img']
            assert out.shape[:2] == (int(target * 15 / 20 + 0.5), target)
    finally:
        np.random.set_state(state)
    assert all(w == h for w, h in scales)  # (L, L) with keep_ratio: long side L
    long_sides = np.array([w for w, _ in scales])
    assert long_sides.min() == 256 and long_sides.max() == 512
    counts = np.bincount(long_sides - 256, minlength=257)
    assert len(counts) == 257 and (counts > 0).all()  # every integer 256..512
    assert counts.max() < 3 * counts.mean()  # uniform: ~11.7 each


@pytest.mark.parametrize('backbone', ['resnet38', 'r50'])
def test_affinitynet_training_augmentation_is_train_aff(backbone):
    """train_aff.py: no rescaling; ColorJitter on the whole image, then a joint random 448
    crop and flip of image and labels."""
    cfg = cfg_of(f'psa-affinitynet_{backbone}-d8_4xb2-10k_voc12aug-448x448.py')
    for ds in cfg.train_dataloader.dataset.datasets:
        steps = [_plain(s) for s in ds.pipeline]
        assert [s['type'] for s in steps] == [
            'LoadImageFromFile', 'LoadAnnotations', 'ColorJitter', 'RandomCanvasCrop', 'RandomFlip',
            'PackSegInputs'
        ]
        assert steps[2] == PSA_JITTER and steps[3]['crop_size'] == (448, 448)
        assert steps[4]['prob'] == 0.5


def test_voc_cam_pipeline_runs_without_masks(tmp_path):
    """The CAM training pipeline needs only the image and the converted label file."""
    import cv2
    from mmcv.transforms import Compose
    init_default_scope('mmseg')
    img_path = tmp_path / '2007_000032.jpg'
    cv2.imwrite(str(img_path), np.random.default_rng(0).integers(0, 255, (30, 40, 3),
                                                                  dtype=np.uint8))
    labels = tmp_path / 'cls_labels.json'
    labels.write_text('{"2007_000032": [0, 14]}')
    cfg = cfg_of('psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py')
    pipeline = copy.deepcopy(cfg.train_dataloader.dataset.datasets[0].pipeline)
    pipeline[1]['label_file'] = str(labels)
    out = Compose(pipeline)(dict(img_path=str(img_path), seg_fields=[],
                                 reduce_zero_label=False))
    sample = out['data_samples']
    assert np.flatnonzero(sample.gt_class_labels).tolist() == [0, 14]
    assert out['inputs'].shape == (3, 448, 448)  # the image on its canvas


def _loop_settings(cfg) -> dict:
    """The PseudoLabelLoop arguments a config runs with (its values over the defaults)."""
    import inspect

    from mmaffseg.wsss.pseudo_label_loop import PseudoLabelLoop
    params = inspect.signature(PseudoLabelLoop.__init__).parameters
    settings = {k: p.default for k, p in params.items() if p.default is not inspect._empty}
    settings.update({k: v for k, v in cfg.test_cfg.items() if k != 'type'})
    return settings


@pytest.mark.parametrize('name', [
    'psa-pseudo-labels_resnet38-d8_voc12aug.py', 'psa-pseudo-labels_resnet38-d8_voc12-train.py',
    'psa-pseudo-labels_r50-d8_voc12aug.py'
])
def test_pseudo_label_recipe_numbers(name):
    """PSA's values (infer_cls.py / infer_aff.py / README): CAM scales 1, 0.5, 1.5, 2 with
    flips, alphas 4 / 32 (affinity labels) and 16 (walk), beta 8, logt 8 (t = 256), the
    CAM row's background score 0.2, radius 5 at stride 8, PSA's dCRF."""
    from mmaffseg.postprocessing import DenseCRF
    from mmaffseg.wsss.cam_inference import resolve_cam_inference
    cfg = cfg_of(name)
    s = _loop_settings(cfg)
    assert tuple(s['cam_scales']) == (1.0, 0.5, 1.5, 2.0) and s['cam_flip'] is True
    for device in ('cpu', 'cuda'):  # float32 CAMs, as the reference, on every device
        assert resolve_cam_inference(s['cam_inference'], device).precision == 'fp32'
    assert (s['low_alpha'], s['high_alpha'], s['rw_alpha']) == (4, 32, 16)
    assert (s['rw_beta'], s['rw_logt'], s['cam_bg_score']) == (8, 8, 0.2)
    crf = DenseCRF(**{k: v for k, v in (s['crf'] or {}).items() if k != 'workers'})
    assert (crf.iterations, crf.gaussian_sxy, crf.gaussian_compat) == (10, 3, 3)
    assert (crf.bilateral_sxy, crf.bilateral_srgb, crf.bilateral_compat) == (80, 13, 10)
    assert crf.scale_factor == 1
    head = _parse(osp.normpath(s['aff_model'])).model.decode_head
    assert (head.radius, head.label_stride) == (5, 8)
    # the runner's images: whole images at their own size (no resize in the test pipeline)
    assert [t['type'] for t in cfg.test_pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'LoadImageLevelLabels', 'PackSegInputs'
    ]


class _Draws:
    """Random integers of the crop from a local generator, recorded (vertical axis first)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.drawn = []

    def __call__(self, space: int) -> int:
        value = int(self.rng.integers(1, space + 1)) if space else 0  # never the top-left
        self.drawn.append(value)
        return value


def _train_step(cfg, type_name: str):
    from mmseg.registry import TRANSFORMS
    step = next(s for s in cfg.train_dataloader.dataset.datasets[0].pipeline
                if s['type'] in (type_name, 'RandomCrop'))
    return TRANSFORMS.build(step)


def _network_input(cfg, crop, results: dict, seed: int):
    """The crop, packing and the config's data preprocessor, as training runs them."""
    from mmseg.datasets.transforms import PackSegInputs
    draws = _Draws(seed)
    crop._draw_offset = draws
    packed = PackSegInputs()(crop(results))
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    data = preprocessor(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]),
                        training=True)
    assert len(draws.drawn) == 2, 'the crop must draw one offset per axis'
    return data, draws.drawn


@pytest.mark.parametrize('shape', [(300, 500), (448, 333), (500, 375), (200, 260)])
def test_cam_crop_input_equals_the_official_one(shape):
    """train_cls.py normalises, then imutils.RandomCrop(448) puts a smaller image at a random
    offset in a zero canvas: the network input of our config (crop, packing, data
    preprocessor) equals it for the same random integers, the canvas exactly 0."""
    from psa_crop_reference import official_cam_input
    init_default_scope('mmseg')
    cfg = cfg_of('psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py')
    rng = np.random.default_rng(shape[0])
    for seed in range(3):
        rgb = rng.integers(0, 256, shape + (3, ), dtype=np.uint8)
        data, drawn = _network_input(cfg, _train_step(cfg, 'RandomCanvasCrop'),
                                     dict(img=rgb[..., ::-1].copy(), img_shape=shape), seed)
        ours = data['inputs'][0].numpy()
        expected = official_cam_input(rgb, 448, *drawn)
        assert ours.shape == expected.shape == (3, 448, 448)
        np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-5)
        np.testing.assert_array_equal(ours[expected == 0], 0)


def test_affinitynet_crop_input_equals_the_official_one():
    """train_aff.py crops image and score maps together before normalising: a black canvas
    (normalised: -mean / std) and unknown (255) labels there."""
    from psa_crop_reference import official_aff_input
    init_default_scope('mmseg')
    cfg = cfg_of('psa-affinitynet_resnet38-d8_4xb2-10k_voc12aug-448x448.py')
    rng = np.random.default_rng(1)
    for seed, shape in enumerate([(375, 500), (333, 448), (281, 300)]):
        rgb = rng.integers(0, 256, shape + (3, ), dtype=np.uint8)
        label = rng.integers(0, 21, shape, dtype=np.uint8)
        results = dict(img=rgb[..., ::-1].copy(), img_shape=shape, gt_seg_map=label.copy(),
                       seg_fields=['gt_seg_map'])
        data, drawn = _network_input(cfg, _train_step(cfg, 'RandomCanvasCrop'), results, seed)
        img, expected_label = official_aff_input(rgb, label, 448, *drawn)
        np.testing.assert_allclose(data['inputs'][0].numpy(), img, rtol=0, atol=2e-5)
        ours_label = data['data_samples'][0].gt_sem_seg.data[0].numpy()
        np.testing.assert_array_equal(ours_label, expected_label)


@pytest.mark.parametrize('name', ['psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py',
                                  'psa-affinitynet_resnet38-d8_4xb2-10k_voc12aug-448x448.py'])
def test_small_images_are_translated_in_the_crop(name):
    """With the config's own random numbers (numpy's, seeded here and restored), a 300-row
    image lands at any row 0..148 of the 448 crop, uniformly as the reference's
    randrange(149), not always at the top."""
    from mmseg.datasets.transforms import PackSegInputs
    init_default_scope('mmseg')
    cfg = cfg_of(name)
    crop = _train_step(cfg, 'RandomCanvasCrop')
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    img = np.full((300, 500, 3), 250, np.uint8)  # far from the canvas after normalisation
    tops = []
    state = np.random.get_state()
    try:
        np.random.seed(0)
        for _ in range(300):
            results = dict(img=img.copy(), img_shape=(300, 500),
                           gt_seg_map=np.zeros((300, 500), np.uint8), seg_fields=['gt_seg_map'])
            packed = PackSegInputs()(crop(results))
            data = preprocessor(dict(inputs=[packed['inputs']],
                                     data_samples=[packed['data_samples']]), training=True)
            content = (data['inputs'][0, 0] > 1.5).any(1)  # rows holding image pixels
            rows = torch.nonzero(content)[:, 0]
            assert data['inputs'].shape[-2:] == (448, 448) and len(rows) == 300
            tops.append(int(rows[0]))
    finally:
        np.random.set_state(state)
    tops = np.array(tops)
    assert tops.min() >= 0 and tops.max() <= 148
    assert len(set(tops.tolist())) > 80  # of 149 possible rows
    assert abs(tops.mean() - 74) < 10  # uniform: mean 74, standard error ~2.5
