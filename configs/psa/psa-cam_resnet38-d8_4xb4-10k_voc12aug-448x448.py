# PSA step 1 on PASCAL VOC 2012 + SBD: the ResNet-38 CAM classifier, with the official recipe
# (jiwoon-ahn/psa README): batch 16 (4 GPUs x 4), 448 crops, 15 epochs of the 10582 train_aug
# images (9920 iterations), SGD lr 0.1 without momentum, weight decay 5e-4, poly decay (power
# 0.9), 10x learning rate for the new layer (the fc), frozen BN everywhere, stem + layer1 frozen.
# The CAM head has no 3x3 conv: fc 4096 -> 20 on the backbone output, as the reference.
# ImageNet weights: convert the reference's ResNet-38 (MXNet ilsvrc-cls_rna-a1_cls1000_ep-0001
# -> PyTorch with its convert_mxnet_to_torch) with
#   python tools/model_converters/resnet38_2mmaffseg.py res38_imagenet.pth pretrain/resnet38_mmaffseg.pth
#   bash tools/dist_train.sh configs/psa/psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py 4
# Validation: single-scale CAMs (background score 0.2, ground-truth classes) on VOC val.
_base_ = [
    '../_base_/datasets/pascal_voc12_aug_wsss.py', 'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (448, 448)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='CAMClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet38',
        out_indices=(5, ),
        frozen_stages=1,
        norm_eval=True,
        norm_cfg=dict(type='BN', requires_grad=False),
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/resnet38_mmaffseg.pth', prefix='backbone.')),
    decode_head=dict(
        type='CAMHead',
        in_channels=4096,
        in_index=0,
        channels=4096,
        num_convs=0,
        num_classes=20,
        dropout_ratio=0.5,
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', bg_score=0.2))
max_iters = 9920
optimizer = dict(type='SGD', lr=0.1, momentum=0.0, weight_decay=5e-4)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=None,
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=max_iters))
