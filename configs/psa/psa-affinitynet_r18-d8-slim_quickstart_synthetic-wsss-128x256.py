# PSA step 3 on the synthetic street scenes: AffinityNet trained on the affinity labels that
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py \
#       --cam-checkpoint CAM.pth --affinity-labels
# wrote to work_dirs/psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256/pseudo_labels
# (change affinity_label_dir below, or pass train_dataloader.dataset.data_prefix.seg_map_path).
#   python tools/train.py configs/psa/psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-128x256.py
# The same slim ResNet-18-D8 as the CAM network (its backbone starts from the CAM network's in
# tools/wsss_demo.py). AffinityHead on levels 0, 2, 3 (32 channels at stride 4, 128 and 256 at
# stride 8 -> 16 + 32 + 64 = 112 affinity channels) with the walk at stride 4 (label_stride=4):
# at stride 8 the 128 x 256 scenes give a 16 x 32 grid, too coarse for their small objects (PSA
# walks at stride 8 on ~375 x 500 VOC images). Radius 5, 300 iterations. No validation:
# AffinityNet predicts affinities, which the pseudo-label runner turns into labels.
_base_ = ['./psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py']
affinity_label_dir = '{{ fileDirname }}/../../work_dirs/' \
    'psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256/pseudo_labels/' \
    'affinity_labels'
crop_size = (128, 256)
aff_train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations', num_classes=9),  # the affinity labels: 0 bg, k + 1 class k, 255
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.9, 1.3), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),  # demo choice (the README numbers), not PSA's jitter
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        map_labels=False,  # the labels are already WSSS labels
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path=affinity_label_dir),
        pipeline=aff_train_pipeline))
model = dict(
    type='AffinityNet',  # backbone and normalisation: the CAM config's
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(
        _delete_=True,
        type='AffinityHead',
        in_channels=(32, 128, 256),
        in_index=(0, 2, 3),
        branch_channels=(16, 32, 64),
        channels=112,
        radius=5,
        label_stride=4,
        num_classes=9,
        align_corners=False),
    test_cfg=dict(_delete_=True, mode='whole'))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
max_iters = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=20, by_epoch=False),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=20, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
