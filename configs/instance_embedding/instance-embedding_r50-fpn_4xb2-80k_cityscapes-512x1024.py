# Instance segmentation by deep metric learning (Fathi et al. 2017) on Cityscapes: the 8 thing
# classes, ResNet-50 + FPN (ImageNet-pretrained), 80k iterations of batch 8 (4 GPUs x 2).
#   bash tools/dist_train.sh \
#       configs/instance_embedding/instance-embedding_r50-fpn_4xb2-80k_cityscapes-512x1024.py 4
# Needs gtFine/*_gtFine_instanceIds.png next to the labelTrainIds (Cityscapes ships them).
_base_ = [
    '../_base_/models/instance-embedding_r50-fpn.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='LoadInstanceMap'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInstanceInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='LoadInstanceMap'),
    dict(type='PackSegInstanceInputs')
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='InstanceAPMetric',
    thing_class_ids={{_base_.thing_class_ids}},
    iou_thrs=(0.5, 0.6, 0.7),
    proposal_nums=(10, 50, 100))
test_evaluator = val_evaluator
# lambda: 0 -> 0.2 over the first 10k iterations by the model base's custom_hooks (the paper
# ramps lambda but gives no schedule).
