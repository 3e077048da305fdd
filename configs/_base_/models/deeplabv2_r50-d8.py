# DeepLab v2 (Chen et al., TPAMI 2018): dilated ResNet (output stride 8) + ASPP as four parallel
# 3x3 atrous classifiers (rates 6, 12, 18, 24) whose class scores are summed. No auxiliary head.
# Needs custom_imports=dict(imports=['mmaffseg']) in the config that uses it.
norm_cfg = dict(type='SyncBN', requires_grad=True)
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
    pretrained='open-mmlab://resnet50_v1c',
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='ASPPV2Head',
        in_channels=2048,
        in_index=3,
        channels=2048,  # unused by the single-conv (ResNet) branches
        dilations=(6, 12, 18, 24),
        fc_branches=False,
        dropout_ratio=0.0,
        num_classes=19,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
