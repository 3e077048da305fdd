# Benchmark: HANet's official DeepLabV3+ head (configs/hanet/hanet_r50-d8_*: plain ASPP, HANet at
# layer4, ASPP concatenation, projection and decoder). Method part: model.type and
# model.decode_head. Differences from the official recipe, to keep the protocol: the protocol's
# backbone (contract_dilation=True instead of the official False) and auxiliary head (256
# channels, align_corners=False instead of 512 / True).
_base_ = ['./_base_/protocol.py', 'mmseg::_base_/models/deeplabv3plus_r50-d8.py']
model = dict(
    **_base_.bench_model,
    type='HANetEncoderDecoder',
    decode_head=dict(
        _delete_=True,
        type='HANetASPPHead',
        in_channels=2048,
        in_index=3,
        channels=256,
        dilations=(1, 12, 24, 36),
        c1_in_channels=256,
        c1_channels=48,
        lower_in_channels=1024,
        lower_index=2,
        hanet_placements=('layer4', 'aspp', 'bottleneck', 'decoder'),
        hanet_cfg=dict(
            reduction=64,
            kernel_size=3,
            num_convs=3,
            pos_rfactor=8,
            pos_injection=2,
            pos_encoding='sinusoid',
            pooling='mean',
            dropout_ratio=0.1,
            pos_noise=0.5),
        dropout_ratio=0.0,
        num_classes=19,
        norm_cfg=_base_.bench_norm_cfg,
        align_corners=True,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
