# Quick-start: Semantic Soft Segmentation features (hypercolumn + N-pair L2 loss) on the synthetic
# street scenes, ResNet-18 from scratch, on CPU. Trained on instance segments (instanceIds).
#   python tools/train.py CONFIG  (this file)
#   python tools/visualize_features.py CONFIG work_dirs/<config name>/iter_300.pth IMG_OR_DIR
_base_ = [
    '../_base_/datasets/synthetic_cityscapes_instances.py',
    '../_base_/quickstart_runtime.py',
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (128, 256)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
embed_dims = 32
model = dict(
    type='FeatureEmbeddingSegmentor',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='HypercolumnBackbone',
        stem_module='maxpool',
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            num_stages=4,
            out_indices=(1, 2, 3),
            dilations=(1, 1, 1, 1),
            strides=(1, 2, 2, 2),
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            contract_dilation=True)),
    decode_head=dict(
        type='HypercolumnHead',
        # image, stem (maxpool), stage 2, stage 3, stage 4 of ResNet-18
        in_channels=(3, 64, 128, 256, 512),
        in_index=(0, 1, 2, 3, 4),
        # the paper's taps scaled down 4x for CPU: 4 + 28 + 32 + 64 + 128 = 256 channels
        tap_channels=(4, 28, 32, 64, 128),
        tap_kernel_sizes=(1, 1, 1, 3, 3),
        channels=128,
        embed_dims=embed_dims,
        # CPU budget: embedding at half the input resolution (upsampled bilinearly at test
        # time) and no dropout (the paper's 0.5 doubles the head's time on CPU; it is on in
        # the Cityscapes config). Set output_stride=1, dropout_ratio=0.5 for the paper's head.
        output_stride=2,
        dropout_ratio=0.0,
        norm_cfg=None,
        align_corners=False,
        loss_decode=dict(
            type='NPairL2Loss', num_instances=3, num_pixels=200, num_resamples=4,
            form='paper')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_dataloader = dict(batch_size=2)
val_evaluator = dict(_delete_=True, type='PairRankingMetric', num_samples=1000, seed=0)
test_evaluator = val_evaluator
# The prediction is an embedding, which mmseg's SegLocalVisualizer cannot paint; mmaffseg's
# paints its PCA picture (validation images, tools/test.py --show-dir).
visualizer = dict(type='AffSegLocalVisualizer')
