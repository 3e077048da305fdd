# PSA step 1 on the synthetic street scenes: a CAM classifier trained on image-level labels only.
#   python tools/train.py configs/psa/psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py
# Slim ResNet-18 (half width) at output stride 8 from scratch, CAMHead (3x3 conv 128, GAP,
# bias-free fc, multi-label soft-margin loss), 8 image-level classes (the thing classes),
# batches of 32 random 32 x 64 crops labelled by their content (see the dataset base).
# 1000 iterations (quick-start schedule: AdamW lr 2e-3, poly).
# Validation scores the single-scale CAMs (bg score 0.2, GT classes) against the val masks.
_base_ = [
    '../_base_/datasets/synthetic_wsss-128x256.py',
    '../_base_/quickstart_runtime.py',
]
crop_size = (32, 64)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='CAMClassifier',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    # shared with the AffinityNet config: the walk runs on this stride-8 grid
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        stem_channels=32,
        base_channels=32,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1),
        dilations=(1, 1, 2, 4),
        norm_cfg=norm_cfg,
        contract_dilation=True),
    decode_head=dict(
        type='CAMHead',
        in_channels=256,
        in_index=3,
        channels=128,
        num_convs=1,
        num_classes=8,
        dropout_ratio=0.5,
        norm_cfg=norm_cfg,
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', bg_score=0.2))
max_iters = 1000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=20, by_epoch=False),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=20, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
