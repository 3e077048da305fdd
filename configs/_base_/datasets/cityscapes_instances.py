# Cityscapes (mmseg's base) with the instance map: LoadInstanceMap reads
# *_gtFine_instanceIds.png next to each *_gtFine_labelTrainIds.png and PackSegInstanceInputs
# packs it as data_sample.gt_instance_map. Crop size 512x1024 as mmseg's base.
_base_ = ['mmseg::_base_/datasets/cityscapes.py']
crop_size = (512, 1024)
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
