# Quick-start: instance segmentation by deep metric learning (Fathi et al. 2017) on the
# synthetic street scenes, ResNet-18 + FPN from scratch, on CPU. 8 thing classes.
#   python tools/train.py configs/instance_embedding/instance-embedding_r18-fpn_quickstart_synthetic-128x256.py
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    '../_base_/datasets/synthetic_cityscapes.py',
    '../_base_/quickstart_runtime.py',
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (128, 256)
norm_cfg = dict(type='BN', requires_grad=True)
# trainIds of person, rider, car, truck, bus, train, motorcycle, bicycle
thing_class_ids = (11, 12, 13, 14, 15, 16, 17, 18)
# Both heads read the four FPN levels, resized to 1/4 and concatenated.
head_common = dict(
    in_channels=[64, 64, 64, 64],
    in_index=[0, 1, 2, 3],
    input_transform='resize_concat',
    channels=64,
    num_convs=2,
    norm_cfg=norm_cfg,
    align_corners=False)
model = dict(
    type='InstanceEmbeddingSegmentor',
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    decode_head=dict(
        _delete_=True,
        type='EmbeddingHead',
        embed_dims=64,
        loss_decode=dict(type='InstanceEmbeddingLoss', num_points=10, size_weighting=True),
        **head_common),
    seediness_head=dict(
        type='SeedinessHead',
        num_classes=len(thing_class_ids),
        taus=(0.25, 0.5, 0.75, 0.9),
        dropout_ratio=0.1,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, loss_name='loss_cls'),
        **head_common),
    thing_class_ids=thing_class_ids,
    cls_loss_weight=0.0,  # ramped to 0.2 by LossWeightRampHook below
    train_cfg=dict(iou_thr=0.5),
    test_cfg=dict(mode='whole', num_seeds=100, alpha=0.3, score_thr=0.0))

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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='InstanceAPMetric',
    thing_class_ids=thing_class_ids,
    iou_thrs=(0.5, 0.6, 0.7),
    proposal_nums=(10, 50, 100))
test_evaluator = val_evaluator
# lambda: 0 -> 0.2 over the first third of training.
custom_hooks = [
    dict(type='LossWeightRampHook', attr_name='cls_loss_weight', start_value=0.0,
         end_value=0.2, begin=0, end=100)
]
# The prediction is a set of instances, not a semantic label map: nothing for
# SegVisualizationHook to paint.
default_hooks = dict(visualization=dict(type='SegVisualizationHook', draw=False))
