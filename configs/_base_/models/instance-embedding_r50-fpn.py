# Instance segmentation by deep metric learning (Fathi et al., arXiv:1703.10277, 2017):
# ResNet-50 + FPN shared by an embedding head (d = 64) and a seediness head (one 9-way
# classifier per tau), for the 8 Cityscapes thing classes. lambda (cls_loss_weight) starts at 0
# and is ramped by the LossWeightRampHook of custom_hooks.
_base_ = ['mmseg::_base_/models/fpn_r50.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
# trainIds of person, rider, car, truck, bus, train, motorcycle, bicycle
thing_class_ids = (11, 12, 13, 14, 15, 16, 17, 18)
# Both heads read the four FPN levels, resized to 1/4 and concatenated.
head_common = dict(
    in_channels=[256, 256, 256, 256],
    in_index=[0, 1, 2, 3],
    input_transform='resize_concat',
    channels=256,
    num_convs=2,
    norm_cfg=norm_cfg,
    align_corners=False)
model = dict(
    type='InstanceEmbeddingSegmentor',
    decode_head=dict(
        _delete_=True,
        type='EmbeddingHead',
        embed_dims=64,
        loss_decode=dict(type='InstanceEmbeddingLoss', num_points=10, size_weighting=True),
        **head_common),
    seediness_head=dict(
        type='SeedinessHead',
        num_classes=len(thing_class_ids),
        taus=(0.25, 0.5, 0.75, 0.9),
        dropout_ratio=0.1,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, loss_name='loss_cls'),
        **head_common),
    thing_class_ids=thing_class_ids,
    cls_loss_weight=0.0,
    train_cfg=dict(iou_thr=0.5),
    test_cfg=dict(mode='whole', num_seeds=100, alpha=0.3, score_thr=0.0))
custom_hooks = [
    dict(type='LossWeightRampHook', attr_name='cls_loss_weight', start_value=0.0,
         end_value=0.2, begin=0, end=10000)
]
