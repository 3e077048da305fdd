# Benchmark: DSRL (Wang et al., CVPR 2020) around the protocol's DeepLabV3+:
# ./deeplabv3plus-half-sssr.py (the network sees the 512x1024 crop downsampled x0.5 and predicts
# at 512x1024, bilinear SSSR) plus the SISR decoder and the feature-affinity loss during training
# (configs/dsrl). Method part: model.type, downsample_factor (the half baseline's), sr_decoder,
# feature_transform, loss_sr, loss_fa. Same data, crops, labels and evaluation as every method;
# DSRL's point is the cheaper network input (see the FLOPs column). dsrl - deeplabv3plus-half-sssr
# is what SISR + FA add; the paper's gain, over a baseline trained on halved labels, also
# includes SSSR.
_base_ = ['./deeplabv3plus-half-sssr.py']
model = dict(
    # SISR decoder on the stride-4 (256 ch) and stride-8 (2048 ch) maps of the 256x512 input:
    # 3 pixel-shuffle x2 stages back to 512x1024
    sr_decoder=dict(
        type='SRDecoder',
        in_channels=(256, 2048),
        in_index=(0, 3),
        channels=64,
        upsample_channels=(64, 32, 16),
        upsample_scales=2,
        upsample_cfg=dict(type='pixel_shuffle', upsample_kernel=3),
        norm_cfg=_base_.bench_norm_cfg),
    feature_transform=dict(norm_cfg=_base_.bench_norm_cfg, act_cfg=dict(type='ReLU')),
    loss_sr=dict(type='ReconstructionMSELoss', loss_weight=0.1),
    loss_fa=dict(
        type='FeatureAffinityLoss', subsample_factor=1 / 8, chunk_size=1024, loss_weight=1.0))
