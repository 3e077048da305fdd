# SPNet (strip pooling, CVPR 2020) R-50-D8 on Cityscapes, 512x1024 crops, 80k iterations.
# Backbone as the official code (see ../_base_/models/spnet_r50-d8.py) except the stem: mmseg's
# ResNetV1c stem (32-32-64) so that the ImageNet weights open-mmlab://resnet50_v1c load; set
# backbone.stem_channels=128 for the official 64-64-128 stem (official SPNet weights converted
# with tools/model_converters/spnet2mmaffseg.py need it).
_base_ = [
    '../_base_/models/spnet_r50-d8.py', 'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
