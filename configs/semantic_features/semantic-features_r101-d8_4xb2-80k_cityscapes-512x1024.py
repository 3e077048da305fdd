# Semantic Soft Segmentation features (Aksoy et al., SIGGRAPH 2018) on Cityscapes instances:
# hypercolumn over a DeepLab-style ResNet-101 (OS 8), N-pair L2 metric loss over 3 instances x
# 1000 pixels, 10 draws per image; SGD momentum 0.9, lr 5e-4 backbone / 5e-3 new layers,
# poly 0.9, weight decay 5e-4 (the paper's optimiser, for the paper's loss scale: 1/|P| times the
# sum over all pairs, NPairL2Loss form='paper').
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py', '../_base_/datasets/cityscapes_instances.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='FeatureEmbeddingSegmentor',
    data_preprocessor=dict(size=crop_size),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(
        _delete_=True,
        type='HypercolumnBackbone',
        stem_module='maxpool',  # the paper's "pool1"
        backbone=dict(
            type='ResNetV1c',
            depth=101,
            num_stages=4,
            out_indices=(1, 2, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1),
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            contract_dilation=True)),
    decode_head=dict(
        _delete_=True,
        type='HypercolumnHead',
        # image, pool1, res3 (stage 2), res4 (stage 3), res5 (stage 4)
        in_channels=(3, 64, 512, 1024, 2048),
        in_index=(0, 1, 2, 3, 4),
        tap_channels=(4, 124, 128, 256, 512),
        tap_kernel_sizes=(1, 1, 1, 3, 3),
        channels=512,
        embed_dims=128,
        output_stride=1,  # embedding at the input resolution, as the paper
        dropout_ratio=0.5,
        norm_cfg=None,  # the reference head has no normalisation
        align_corners=False,
        loss_decode=dict(
            type='NPairL2Loss', num_instances=3, num_pixels=1000, num_resamples=10,
            form='paper')),
    auxiliary_head=None,
    # 8 GB of hypercolumn per full 1024x2048 frame: evaluate in overlapping crops instead.
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 683)))

val_evaluator = dict(_delete_=True, type='PairRankingMetric', num_samples=1000, seed=0)
test_evaluator = val_evaluator

# The paper's optimiser: base lr 5e-4 for the pretrained backbone, 10x for the new layers. It
# goes with the paper's 1/|P| loss normalisation; with a 1/|P|^2 mean (normalization='pairs')
# the metric gradient would be 3000x smaller and drown under the weight decay.
optimizer = dict(type='SGD', lr=5e-4, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000, by_epoch=False)
]
default_hooks = dict(visualization=dict(type='SegVisualizationHook', draw=False))
# Paints the embedding, which mmseg's SegLocalVisualizer cannot (tools/test.py --show-dir).
visualizer = dict(type='AffSegLocalVisualizer')
