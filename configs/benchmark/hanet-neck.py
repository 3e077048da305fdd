# Benchmark: HANet (Choi et al., CVPR 2020) as a neck between layer3 and layer4 of the protocol's
# DeepLabV3+ (configs/hanet/deeplabv3plus-hanet-neck_*). Method part: model.type (absolute row
# positions, also in sliding windows) and model.neck.
_base_ = ['./_base_/protocol.py', 'mmseg::_base_/models/deeplabv3plus_r50-d8.py']
model = dict(
    **_base_.bench_model,
    type='HANetEncoderDecoder',
    neck=dict(
        type='HANetNeck',
        in_channels=[256, 512, 1024, 2048],
        pairs=[(2, 3)],
        hanet_cfg=dict(reduction=64, pos_rfactor=8, pos_noise=0.5),
        norm_cfg=_base_.bench_norm_cfg))
