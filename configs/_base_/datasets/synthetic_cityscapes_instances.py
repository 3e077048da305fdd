# The synthetic street scenes with their instance map (instanceIds in Cityscapes' encoding):
# LoadInstanceMap after the labels, PackSegInstanceInputs instead of PackSegInputs.
_base_ = ['./synthetic_cityscapes.py']
crop_size = (128, 256)
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations', num_classes=19),
    dict(type='LoadInstanceMap'),
    dict(type='RandomResize', scale=(512, 256), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInstanceInputs')
]
test_pipeline = [
    # mmseg's LoadImageFromFile: mmseg's MMSegInferencer finds it by this name to read images
    # it is given (training pipelines use LoadCheckedImageFromFile)
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='LoadCheckedAnnotations', num_classes=19),
    dict(type='LoadInstanceMap'),
    dict(type='PackSegInstanceInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
