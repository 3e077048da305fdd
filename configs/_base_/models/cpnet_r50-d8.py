# CPNet (context prior, CVPR 2020) R-50-D8: CPHead (strict official mode, prior 64 for 512x512
# crops at OS 8) with the affinity loss, and an FCN auxiliary head on stage 3 (weight 0.4), on
# mmseg's PSPNet R-50-D8 base (ResNetV1c, dilations 1/1/2/4, contract_dilation, OS 8).
# Top-level configs add custom_imports = dict(imports=['mmaffseg'], ...).
_base_ = ['mmseg::_base_/models/pspnet_r50-d8.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='CPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        prior_channels=512,
        prior_size=64,
        am_kernel_size=11,
        groups=1,
        size_mode='strict',
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_prior_decode=dict(type='ContextPriorLoss', form='official', loss_weight=1.0)))
