# DeepLab v1 LargeFOV on PASCAL VOC 2012 + SBD ("aug", 10,582 train images), mmseg's 20k schedule
# and 512x512 crops (the paper: 321x321 crops, batch 20, 6k iterations), without the CRF.
_base_ = [
    '../_base_/models/deeplabv1_vgg16-largefov.py', 'mmseg::_base_/datasets/pascal_voc12_aug.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_20k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor, decode_head=dict(num_classes=21))
# DeepLab's solver: SGD lr 1e-3, momentum 0.9, weight decay 5e-4, classifier (fc8) lr x10.
optim_wrapper = dict(
    optimizer=dict(lr=0.001),
    paramwise_cfg=dict(custom_keys={'decode_head.conv_seg': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=20000, by_epoch=False)
]
