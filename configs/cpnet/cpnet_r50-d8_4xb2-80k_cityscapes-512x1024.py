# CPNet (context prior, CVPR 2020) R-50-D8 on Cityscapes, 512x1024 crops, 80k iterations.
# The official head only runs when the stride-8 feature map equals the prior grid. With
# 512x1024 crops that map is 64x128, so prior_size=(64, 128) (each prior cell = 8x8 pixels,
# as in the official 512x512 / prior 64 setting), and testing slides 512x1024 windows.
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py', 'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(
        _delete_=True,
        type='CPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        prior_channels=512,
        prior_size=(64, 128),
        am_kernel_size=11,
        groups=1,
        size_mode='strict',
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_prior_decode=dict(type='ContextPriorLoss', form='official', loss_weight=1.0)),
    # auxiliary FCN head on stage 3, weight 0.4, comes from the base
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 683)))
