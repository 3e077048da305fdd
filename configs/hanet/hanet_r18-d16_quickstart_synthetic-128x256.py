# Quick start: DeepLabV3+ HANet on a ResNet-18-D16 trained from scratch on the synthetic street
# scenes (strong height priors), 300 iterations on CPU. Same backbone, widths and schedule as
# configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py, for comparison; the
# head is the official HANet DeepLabV3+ layout (plain ASPP, 1x1 projection, four HANets).
#   python tools/train.py configs/hanet/hanet_r18-d16_quickstart_synthetic-128x256.py
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/synthetic_cityscapes_crop-offset.py',
    '../_base_/quickstart_runtime.py',
]
crop_size = (128, 256)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='HANetEncoderDecoder',
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), norm_cfg=norm_cfg),
    decode_head=dict(
        _delete_=True,
        type='HANetASPPHead',
        in_channels=512,
        in_index=3,
        channels=128,
        dilations=(1, 6, 12, 18),  # output stride 16
        c1_in_channels=64,
        c1_channels=12,
        lower_in_channels=256,
        lower_index=2,
        hanet_cfg=dict(reduction=16, pos_rfactor=8, pos_noise=0.5),
        dropout_ratio=0.0,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=True,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        in_channels=256, channels=64, num_classes=19, norm_cfg=norm_cfg, align_corners=True))
