# PSA step 3 on the synthetic street scenes: AffinityNet trained on the affinity labels that
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py \
#       --cam-checkpoint CAM.pth --affinity-labels
# wrote to work_dirs/psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256/pseudo_labels
# (change affinity_label_dir below, or pass train_dataloader.dataset.data_prefix.seg_map_path).
#   python tools/train.py configs/psa/psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-128x256.py
# The same slim ResNet-18-D8 as the CAM network; AffinityHead on its stride-8 levels 1-3
# (64, 128, 256 channels -> 32 + 64 + 128 = 224 affinity channels), radius 5. No validation:
# AffinityNet predicts affinities, which the pseudo-label runner turns into labels.
_base_ = ['./psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py']
affinity_label_dir = '{{ fileDirname }}/../../work_dirs/' \
    'psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256/pseudo_labels/' \
    'affinity_labels'
crop_size = (128, 256)
aff_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedAnnotations'),  # the affinity labels: 0 bg, k + 1 class k, 255
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.9, 1.3), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    dataset=dict(
        map_labels=False,  # the labels are already WSSS labels
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path=affinity_label_dir),
        pipeline=aff_train_pipeline))
model = dict(
    type='AffinityNet',  # backbone and data_preprocessor: the CAM config's
    decode_head=dict(
        _delete_=True,
        type='AffinityHead',
        in_channels=(64, 128, 256),
        in_index=(1, 2, 3),
        branch_channels=(32, 64, 128),
        channels=224,
        radius=5,
        label_stride=8,
        num_classes=9,
        align_corners=False),
    test_cfg=dict(_delete_=True, mode='whole'))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
