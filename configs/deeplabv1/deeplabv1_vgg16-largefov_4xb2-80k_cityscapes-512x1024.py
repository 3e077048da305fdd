# DeepLab v1 LargeFOV on Cityscapes 512x1024, 80k iterations, without the CRF.
_base_ = [
    '../_base_/models/deeplabv1_vgg16-largefov.py', 'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
# DeepLab's solver: SGD lr 1e-3, momentum 0.9, weight decay 5e-4, classifier (fc8) lr x10.
optim_wrapper = dict(
    optimizer=dict(lr=0.001),
    paramwise_cfg=dict(custom_keys={'decode_head.conv_seg': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=80000, by_epoch=False)
]
