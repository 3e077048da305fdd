# mmseg's Cityscapes 512x1024 with a training pipeline that records where each crop lies, for
# HANet (its positional encoding needs every crop's absolute image row): RandomCropWithOffset in
# place of RandomCrop, and PackSegInputs keeping 'crop_offset'.
_base_ = 'mmseg::_base_/datasets/cityscapes.py'
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
             'flip', 'flip_direction', 'reduce_zero_label', 'crop_offset')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCropWithOffset', crop_size=_base_.crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
