# Example: mmseg's unchanged PSPNet R-50-D8 Cityscapes config with its PSP head swapped for the
# context prior head. size_mode='resize' (opt-in) lets the head run at any feature size, so
# mmseg's whole-image inference of the base config keeps working: features are resized to the
# 64x64 prior grid for the prior map and the contexts are resized back.
_base_ = ['mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
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
        size_mode='resize',
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_prior_decode=dict(type='ContextPriorLoss', loss_weight=1.0)))
