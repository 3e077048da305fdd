# DeepLab v2 R-101 on PASCAL VOC 2012 + SBD ("aug"), mmseg's 20k schedule, 512x512 crops,
# without the CRF.
_base_ = [
    '../_base_/models/deeplabv2_r50-d8.py', 'mmseg::_base_/datasets/pascal_voc12_aug.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_20k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(num_classes=21))
