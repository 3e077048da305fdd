# Example: HANet dropped into mmseg's DeepLabV3+ R-50-D8 Cityscapes recipe as a neck (layer3 ->
# layer4, the official backbone placement). The bases are those of mmseg's
# deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py with its Cityscapes data
# swapped for the crop-offset variant; only three things change: the neck, the segmentor type
# (so that the neck gets absolute row positions, also in sliding windows) and the crop transform
# / packing that record where each training crop lies (the dataset base).
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/cityscapes_crop-offset.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
model = dict(
    type='HANetEncoderDecoder',
    data_preprocessor=data_preprocessor,
    neck=dict(
        type='HANetNeck',
        in_channels=[256, 512, 1024, 2048],
        pairs=[(2, 3)],
        hanet_cfg=dict(reduction=64, pos_rfactor=8, pos_noise=0.5),
        norm_cfg=dict(type='SyncBN', requires_grad=True)))
