# Quick start: CPNet on a slim dilated ResNet-50 (width 16, BN, no pretraining) on the synthetic
# Cityscapes-layout data, 300 iterations on CPU. 128x256 crops give a 16x32 stride-8 map =
# prior_size; validation slides 128x256 windows over the 256x512 images (strict official mode).
#   python tools/train.py configs/cpnet/cpnet_r50-d8-slim_quickstart_synthetic-128x256.py
_base_ = [
    '../_base_/models/cpnet_r50-d8.py', '../_base_/datasets/synthetic_cityscapes.py',
    '../_base_/quickstart_runtime.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    pretrained=None,
    backbone=dict(base_channels=16, stem_channels=32, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=512, channels=128, prior_channels=128, prior_size=(16, 32),
        norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=64, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=_base_.crop_size, stride=(85, 171)))
