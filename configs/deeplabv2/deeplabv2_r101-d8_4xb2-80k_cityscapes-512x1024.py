# DeepLab v2 (ResNet-101, OS8, ASPP of four summed atrous classifiers) on Cityscapes 512x1024,
# mmseg's 80k schedule and R-101-D8 backbone (SyncBN, lr 0.01), without the CRF.
_base_ = [
    '../_base_/models/deeplabv2_r50-d8.py', 'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101))
