# Baseline for the DSRL quick-start, as the paper's: the same DeepLabV3+ R-18-D16 and schedule at
# the SAME network input, i.e. the synthetic images and labels downsampled x0.5 in the pipeline
# (128x256 images, 64x128 crops, no SSSR); predictions are resized to the 256x512 labels for
# evaluation.
#   python tools/train.py configs/dsrl/deeplabv3plus_r18-d16_quickstart_synthetic-half-64x128.py
_base_ = ['../quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py']
crop_size = (64, 128)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations', num_classes=19),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadCheckedAnnotations', num_classes=19),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
