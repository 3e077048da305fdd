# Quick start: SPNet (official SPM placement + SPHead) on a slim dilated ResNet-50 (width 16,
# BN, no pretraining) on the synthetic Cityscapes-layout data, 300 iterations on CPU.
#   python tools/train.py configs/spnet/spnet_r50-d8-slim_quickstart_synthetic-128x256.py
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py', '../_base_/datasets/synthetic_cityscapes.py',
    '../_base_/quickstart_runtime.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    pretrained=None,
    backbone=dict(
        type='ResNetSP',
        base_channels=16,
        stem_channels=32,
        spm_blocks=('last', 'last', 'last', 'all'),
        multi_grid=(4, 8, 16),
        norm_cfg=norm_cfg),
    decode_head=dict(
        _delete_=True,
        type='SPHead',
        in_channels=512,
        in_index=3,
        channels=128,
        pool_sizes=(20, 12),
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=True,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(in_channels=256, channels=64, norm_cfg=norm_cfg, align_corners=True))
