# Example: HANet dropped into mmseg's unchanged DeepLabV3+ R-50-D8 Cityscapes config as a neck
# (layer3 -> layer4, the official backbone placement). Only three things change: the neck, the
# segmentor type (so that the neck gets absolute row positions, also in sliding windows) and the
# crop transform / packing that record where each training crop lies.
_base_ = ['mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
model = dict(
    type='HANetEncoderDecoder',
    neck=dict(
        type='HANetNeck',
        in_channels=[256, 512, 1024, 2048],
        pairs=[(2, 3)],
        hanet_cfg=dict(reduction=64, pos_rfactor=8, pos_noise=0.5),
        norm_cfg=dict(type='SyncBN', requires_grad=True)))

meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
             'flip', 'flip_direction', 'reduce_zero_label', 'crop_offset')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCropWithOffset', crop_size=(512, 1024), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
