# Instance segmentation by deep metric learning (Fathi et al. 2017) on Cityscapes: the 8 thing
# classes, ResNet-50 + FPN (ImageNet-pretrained), 80k iterations of batch 8 (4 GPUs x 2).
#   bash tools/dist_train.sh \
#       configs/instance_embedding/instance-embedding_r50-fpn_4xb2-80k_cityscapes-512x1024.py 4
# Needs gtFine/*_gtFine_instanceIds.png next to the labelTrainIds (Cityscapes ships them).
_base_ = [
    '../_base_/models/instance-embedding_r50-fpn.py',
    '../_base_/datasets/cityscapes_instances.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
# The paper's image pyramid, in training and at inference: the feature extractor runs on the
# image at 0.25, 0.5, 1 and 2 times its size, the features are averaged at their scale-1 size
# and feed both heads (about 5.3x the single-scale backbone + FPN cost; the quick-start config
# stays single scale).
pyramid_scales = (0.25, 0.5, 1.0, 2.0)
model = dict(
    data_preprocessor=dict(size=crop_size),
    train_cfg=dict(scales=pyramid_scales),
    test_cfg=dict(scales=pyramid_scales, scale_fusion='features'))
train_dataloader = dict(batch_size=2)
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
# lambda: 0 -> 0.2 over the first 10k iterations by the model base's custom_hooks (the paper
# ramps lambda but gives no schedule).
# Paints instances, which mmseg's SegLocalVisualizer cannot (tools/test.py --show-dir).
visualizer = dict(type='AffSegLocalVisualizer')
