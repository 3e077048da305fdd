# PSA step 3 on PASCAL VOC 2012 + SBD: AffinityNet (ResNet-38) trained on the affinity labels of
# the train_aug images, made by step 2:
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_resnet38-d8_voc12aug.py \
#       --cam-checkpoint CAM.pth --affinity-labels
# into work_dirs/psa-pseudo-labels_resnet38-d8_voc12aug/pseudo_labels/affinity_labels (set
# affinity_label_dir below if you used another --out). Official recipe (jiwoon-ahn/psa README
# and train_aff.py): batch 8 (4 GPUs x 2; the loss normalises over the whole distributed batch
# as the reference's single-process batch), no rescaling, ColorJitter(0.3, 0.3, 0.3, 0.1), random
# 448 crop, horizontal flip, 8 epochs (10576 iterations), SGD lr 0.1 without momentum, weight
# decay 5e-4, poly decay, 10x lr for the new layers, frozen BN, stem + layer1 frozen, ImageNet
# ResNet-38 weights.
#   bash tools/dist_train.sh configs/psa/psa-affinitynet_resnet38-d8_4xb2-10k_voc12aug-448x448.py 4
_base_ = ['./psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py']
affinity_label_dir = '{{ fileDirname }}/../../work_dirs/psa-pseudo-labels_resnet38-d8_voc12aug/' \
    'pseudo_labels/affinity_labels'
crop_size = (448, 448)
# train_aff.py's order: colour jitter on the whole image, then the joint crop and flip. The
# crop is imutils.RandomCrop's, applied before normalisation: an image shorter than 448 lands
# at a random offset on a black canvas; the labels there are unknown (255)
aff_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # the affinity labels: 0 bg, k + 1 class k, 255 unknown
    {{_base_.psa_color_jitter}},
    dict(type='RandomCanvasCrop', crop_size=crop_size, img_pad_val=0, seg_pad_val=255),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=2,
    # the base's VOC train + SBD aug images, labelled by the affinity labels
    dataset=dict(datasets=[
        dict(d,
             data_prefix=dict(img_path='JPEGImages', seg_map_path=affinity_label_dir),
             pipeline=aff_train_pipeline)
        for d in _base_.train_dataloader.dataset.datasets
    ]))
model = dict(
    type='AffinityNet',
    backbone=dict(out_indices=(2, 3, 5)),  # 512, 1024 and 4096 channels, stride 8
    decode_head=dict(
        _delete_=True,
        type='AffinityHead',
        in_channels=(512, 1024, 4096),
        in_index=(0, 1, 2),
        branch_channels=(64, 128, 256),
        channels=448,
        radius=5,
        label_stride=8,
        num_classes=21,
        align_corners=False),
    test_cfg=dict(_delete_=True, mode='whole'))
max_iters = 10576
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=max_iters))
# AffinityNet predicts affinities, not labels: no validation / test here
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
