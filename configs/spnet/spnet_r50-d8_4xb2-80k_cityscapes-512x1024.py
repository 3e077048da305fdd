# SPNet (strip pooling, CVPR 2020) R-50-D8 on Cityscapes, 512x1024 crops, 80k iterations.
# Backbone as the official code: SPM after conv2 of the last block of stages 1-3 and of every
# block of stage 4 (ResNetSP), stage-3 first block dilation 1 (contract_dilation, from the PSPNet
# base), stage-4 multi-grid dilations 4/8/16, output stride 8. The stem stays mmseg's ResNetV1c
# stem (32-32-64) so that the ImageNet weights open-mmlab://resnet50_v1c load; set
# backbone.stem_channels=128 for the official 64-64-128 stem (official SPNet weights converted
# with tools/model_converters/spnet2mmaffseg.py need it).
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py', 'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        type='ResNetSP',
        spm_cfg=dict(type='SPM'),  # norm_cfg follows the backbone's
        spm_blocks=('last', 'last', 'last', 'all'),
        multi_grid=(4, 8, 16)),
    decode_head=dict(
        _delete_=True,
        type='SPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        pool_sizes=(20, 12),
        num_mpms=2,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=True,  # official bilinear upsampling uses align_corners=True
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(align_corners=True))  # FCN on stage 3, weight 0.4 (base)
