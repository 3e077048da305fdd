# The DSRL paper's baseline: plain DeepLabV3+ R-50-D8 at the SAME 512x1024 network input, i.e.
# Cityscapes downsampled x0.5 in the data pipeline (scale 1024x512, random ratio 0.5-2.0, crop
# 512x1024), trained against labels downsampled with it (no SSSR). Evaluation resizes the
# prediction to the original 1024x2048 labels, as for DSRL. DSRL's gain over it includes SSSR,
# SISR and FA; the one-protocol benchmark's deeplabv3plus-half-sssr (full-resolution labels,
# bilinear SSSR) is another baseline (configs/dsrl/benchmarks.md).
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)

crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(1024, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
