# HANet's official DeepLabV3+ head (CVPR 2020): plain ASPP (rates 12/24/36 at output stride 8),
# 1x1 projection, 256-channel decoder, HANet at layer4, the ASPP concatenation, the projection
# and the decoder output (r=64, kernel 3, three convs, sinusoid positions injected after the
# first conv, position noise 0.5), no classifier dropout. A variable, not a model, because its
# users already inherit one:
#   model = dict(decode_head=dict(_delete_=True, **_base_.hanet_aspp_head, norm_cfg=...))
hanet_aspp_head = dict(
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
    dropout_ratio=0.0,  # the official classifier has no dropout
    num_classes=19,
    align_corners=True,
    loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
