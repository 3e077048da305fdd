# Quick start: DeepLab v2 ASPP on a dilated ResNet-18 (OS8, BN, no pretraining) on the synthetic
# Cityscapes-layout data, 300 iterations on CPU, without the CRF.
_base_ = [
    '../_base_/models/deeplabv2_r50-d8.py', '../_base_/datasets/synthetic_cityscapes.py',
    '../_base_/quickstart_runtime.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(size=_base_.crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=512, channels=512))
