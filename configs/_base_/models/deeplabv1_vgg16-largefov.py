# DeepLab v1 "LargeFOV" (Chen et al., ICLR 2015): atrous VGG-16 (pool4/pool5 stride 1, conv5
# dilation 2, pool5a; output stride 8) + fc6 (3x3, dilation 12, 1024) / fc7 (1x1, 1024) / fc8.
# Needs custom_imports=dict(imports=['mmaffseg']) in the config that uses it.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    # DeepLab starts from ImageNet VGG-16 (fc6/fc7 subsampled to 1024 channels); set
    # backbone init_cfg=dict(type='Pretrained', checkpoint=...) to such weights in our layout.
    backbone=dict(type='VGGAtrous', depth=16, out_indices=(4, ), avg_pool5=True),
    decode_head=dict(
        type='LargeFOVHead',
        in_channels=512,
        in_index=0,
        channels=1024,
        dilation=12,
        dropout_ratio=0.5,
        num_classes=19,
        norm_cfg=None,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
