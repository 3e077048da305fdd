# Quick-start: DeepLabV3+ R-18-D16 from scratch on the synthetic street scenes, on CPU.
#   python tools/train.py configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py
# Output stride 16 (dilation only in the last stage) instead of mmseg's D8: 2.4 GMACs per
# 128x256 crop instead of 6.8, so 300 iterations fit in a few minutes on 2 CPU cores.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/synthetic_cityscapes.py',
    '../_base_/quickstart_runtime.py',
]
crop_size = (128, 256)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=512,
        channels=128,
        c1_in_channels=64,
        c1_channels=12,
        num_classes=19,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=64, num_classes=19, norm_cfg=norm_cfg))
