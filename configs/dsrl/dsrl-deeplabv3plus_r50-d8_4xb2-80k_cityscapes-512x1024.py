# DSRL (Wang et al., CVPR 2020) around mmseg's DeepLabV3+ R-50-D8 on Cityscapes: the paper's
# setting. Training crops are 1024x2048 ORIGINAL-resolution pixels (labels at that resolution);
# the segmentor halves them, so the network input is 512x1024; the SSSR output and the SISR
# reconstruction are back at 1024x2048. Inference: 1024x2048 images -> 512x1024 network input.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)

crop_size = (1024, 2048)  # original-resolution crop; network input = crop_size / 2
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(size=crop_size)
model = dict(
    type='DSRLEncoderDecoder',
    data_preprocessor=data_preprocessor,
    downsample_factor=0.5,
    # SISR decoder on the backbone's stride-4 (256 ch) and stride-8 (2048 ch) maps:
    # 3 pixel-shuffle x2 stages take stride 4 of the 512x1024 input to 1024x2048.
    sr_decoder=dict(
        type='SRDecoder',
        in_channels=(256, 2048),
        in_index=(0, 3),
        channels=64,
        upsample_channels=(64, 32, 16),
        upsample_scales=2,
        upsample_cfg=dict(type='pixel_shuffle', upsample_kernel=3),
        norm_cfg=norm_cfg),
    feature_transform=dict(norm_cfg=norm_cfg, act_cfg=dict(type='ReLU')),
    loss_sr=dict(type='ReconstructionMSELoss', loss_weight=0.1),
    # FA on the 1024x2048 SSSR output subsampled 1/8 -> 128x256 positions (32768^2 similarity
    # matrices, built 1024 rows at a time to bound memory).
    loss_fa=dict(
        type='FeatureAffinityLoss', subsample_factor=1 / 8, chunk_size=1024, loss_weight=1.0))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
