# Quick-start: Semantic Soft Segmentation features (hypercolumn + N-pair L2 loss) on the synthetic
# street scenes, ResNet-18 from scratch, on CPU. Trained on instance segments (instanceIds).
#   python tools/train.py configs/semantic_features/semantic-features_r18_quickstart_synthetic-128x256.py
#   python tools/visualize_features.py <this config> work_dirs/<name>/iter_300.pth IMG_OR_DIR --out DIR
_base_ = [
    '../_base_/datasets/synthetic_cityscapes.py',
    '../_base_/quickstart_runtime.py',
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (128, 256)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
embed_dims = 32
model = dict(
    type='FeatureEmbeddingSegmentor',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='HypercolumnBackbone',
        stem_module='maxpool',
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            num_stages=4,
            out_indices=(1, 2, 3),
            dilations=(1, 1, 1, 1),
            strides=(1, 2, 2, 2),
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            contract_dilation=True)),
    decode_head=dict(
        type='HypercolumnHead',
        # image, stem (maxpool), stage 2, stage 3, stage 4 of ResNet-18
        in_channels=(3, 64, 128, 256, 512),
        in_index=(0, 1, 2, 3, 4),
        # the paper's taps scaled down 4x for CPU: 4 + 28 + 32 + 64 + 128 = 256 channels
        tap_channels=(4, 28, 32, 64, 128),
        tap_kernel_sizes=(1, 1, 1, 3, 3),
        channels=128,
        embed_dims=embed_dims,
        output_stride=1,
        dropout_ratio=0.5,
        norm_cfg=None,
        align_corners=False,
        loss_decode=dict(
            type='NPairL2Loss', num_instances=3, num_pixels=200, num_resamples=4,
            form='paper')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedAnnotations'),
    dict(type='LoadInstanceMap'),
    dict(type='RandomResize', scale=(512, 256), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInstanceInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='LoadCheckedAnnotations'),
    dict(type='LoadInstanceMap'),
    dict(type='PackSegInstanceInputs')
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='PairRankingMetric', num_samples=1000, seed=0)
test_evaluator = val_evaluator
# The prediction is an embedding, not a label map: nothing for SegVisualizationHook to paint.
default_hooks = dict(visualization=dict(type='SegVisualizationHook', draw=False))
