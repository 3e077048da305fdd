# Quick-start DSRL on CPU: the quick-start DeepLabV3+ R-18-D16 wrapped by DSRL on the synthetic
# street scenes. 128x256 crops of the 256x512 images (full-resolution labels); the network sees
# 64x128 in training and 128x256 at test time (256x512 images halved inside the model).
#   python tools/train.py configs/dsrl/dsrl-deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py
_base_ = ['../quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='DSRLEncoderDecoder',
    downsample_factor=0.5,
    sr_decoder=dict(
        type='SRDecoder',
        in_channels=(64, 512),
        in_index=(0, 3),
        channels=32,
        upsample_channels=(32, 16, 16),
        upsample_scales=2,
        upsample_cfg=dict(type='pixel_shuffle', upsample_kernel=3),
        norm_cfg=norm_cfg),
    feature_transform=dict(norm_cfg=norm_cfg, act_cfg=dict(type='ReLU')),
    loss_sr=dict(type='ReconstructionMSELoss', loss_weight=0.1),
    loss_fa=dict(type='FeatureAffinityLoss', subsample_factor=1 / 8, loss_weight=1.0))
