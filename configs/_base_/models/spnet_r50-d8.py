# SPNet (strip pooling, CVPR 2020) R-50-D8: the official dilated ResNet with SPM (ResNetSP), the
# SPHead and an FCN auxiliary head on stage 3 (weight 0.4), on mmseg's PSPNet R-50-D8 base
# (ResNetV1c, dilations 1/1/2/4, contract_dilation: stage-3 first block dilation 1, OS 8).
# Top-level configs add custom_imports = dict(imports=['mmaffseg'], ...).
_base_ = ['mmseg::_base_/models/pspnet_r50-d8.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        type='ResNetSP',
        spm_cfg=dict(type='SPM'),  # norm_cfg follows the backbone's
        spm_blocks=('last', 'last', 'last', 'all'),  # official placement
        multi_grid=(4, 8, 16)),  # official stage-4 dilations
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
    auxiliary_head=dict(align_corners=True))
