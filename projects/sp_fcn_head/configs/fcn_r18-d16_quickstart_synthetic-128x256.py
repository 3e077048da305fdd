# Baseline of this project: mmseg's FCN head on the quick-start ResNet-18-D16, from scratch,
# 300 iterations on the synthetic street scenes (CPU).
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    '../../../configs/_base_/datasets/synthetic_cityscapes.py',
    '../../../configs/_base_/quickstart_runtime.py',
]
crop_size = (128, 256)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), norm_cfg=norm_cfg),
    decode_head=dict(in_channels=512, channels=128, num_classes=19, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=64, num_classes=19, norm_cfg=norm_cfg))
