# Quick-start: instance segmentation by deep metric learning (Fathi et al. 2017) on the
# synthetic street scenes (8 thing classes), ResNet-18 + FPN from scratch, on CPU.
#   python tools/train.py \
#       configs/instance_embedding/instance-embedding_r18-fpn_quickstart_synthetic-128x256.py
_base_ = [
    '../_base_/models/instance-embedding_r50-fpn.py',
    '../_base_/datasets/synthetic_cityscapes_instances.py',
    '../_base_/quickstart_runtime.py',
]
crop_size = (128, 256)
norm_cfg = dict(type='BN', requires_grad=True)
# ResNet-18 and 64-channel FPN / heads instead of ResNet-50 and 256.
head_channels = dict(in_channels=[64, 64, 64, 64], channels=64, norm_cfg=norm_cfg)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    decode_head=head_channels,
    # One departure from the paper for a from-scratch model trained minutes on CPU, chosen on
    # held-back training images (configs/instance_embedding/benchmarks.md, "Selection on held-back
    # training images"): masks overlapping a higher-scoring one with IoU > 0.5 are dropped at
    # inference (the weak embedding grows near-duplicates). The seediness cross-entropy is the
    # paper's plain one: background weight 0.2 lost that selection.
    seediness_head=dict(**head_channels),
    test_cfg=dict(mask_nms_thr=0.5))

# Ours (PASCAL-style AP at IoU 0.5 / 0.6 / 0.7, AR@N), and Cityscapes' official AP (IoU
# 0.50:0.95) and AP50 by cityscapesscripts (reported as cityscapes/AP, cityscapes/AP50; see
# configs/instance_embedding/cityscapes_evaluation.md for how the two differ).
val_evaluator = [
    dict(
        type='InstanceAPMetric',
        thing_class_ids={{_base_.thing_class_ids}},
        iou_thrs=(0.5, 0.6, 0.7),
        proposal_nums=(10, 50, 100)),
    dict(type='CityscapesInstanceMetric', thing_class_ids={{_base_.thing_class_ids}}),
]
test_evaluator = val_evaluator
# lambda: 0 -> 0.2 over the first third of training.
custom_hooks = [
    dict(type='LossWeightRampHook', attr_name='cls_loss_weight', start_value=0.0,
         end_value=0.2, begin=0, end=100)
]
# The prediction is a set of instances, which mmseg's SegLocalVisualizer cannot paint;
# mmaffseg's paints one colour per instance with its class and score (validation images,
# tools/test.py --show-dir).
visualizer = dict(type='AffSegLocalVisualizer')
