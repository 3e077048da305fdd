# The benchmark protocol shared by every method of configs/benchmark: Cityscapes
# 512x1024 crops, mmseg's 80k schedule (SGD lr 0.01, poly), 4 GPUs x 2 images, mmseg's
# augmentation, ResNet-50-D8 (ResNetV1c, open-mmlab://resnet50_v1c) with mmseg's FCN auxiliary
# head on stage 3, single-scale sliding-window evaluation (512x1024 windows, stride 341x683).
# Method configs inherit this file and a model file, then set
#     model = dict(**_base_.bench_model)
# and change only their method's part; tests/test_configs/test_benchmark_protocol.py checks it.
# Names start with bench_ so that they never collide with a model _base_ (mmengine forbids
# duplicate keys among bases).
_base_ = [
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
bench_norm_cfg = dict(type='SyncBN', requires_grad=True)
bench_model = dict(
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size),
    pretrained='open-mmlab://resnet50_v1c',
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        multi_grid=None,
        norm_cfg=bench_norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=bench_norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    # mmseg's Cityscapes evaluation: 512x1024 windows slid over the 1024x2048 image (3 x 3)
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 683)))

# mmseg's augmentation; RandomCropWithOffset is RandomCrop recording where the crop lies (HANet
# needs it, the other methods ignore the extra key), so that every method sees the same crops.
bench_meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                   'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label', 'crop_offset')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCropWithOffset', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=bench_meta_keys),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
randomness = dict(seed=0)
