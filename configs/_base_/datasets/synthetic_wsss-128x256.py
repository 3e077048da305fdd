# Weakly supervised view of the synthetic street scenes for the PSA pipeline: 128x256 images,
# labels 0 background (all "stuff" classes) and 1..8 the thing classes (person, rider, car,
# truck, bus, train, motorcycle, bicycle); see mmaffseg/datasets/synthetic_wsss.py.
# Generated on first use into data/synthetic_cityscapes_128x256 (300 train + 60 val, ~20 s).
# The CAM network learns from image-level labels only: LoadImageLevelLabels derives them from
# the ground truth (classes with >= 16 pixels) and the masks are not used otherwise.
# Cars are in every synthetic scene and people in most: with whole-image labels the classifier
# would never see an image without a car and could not learn where cars are. The CAM network
# therefore trains on random 32 x 64 crops, each labelled with the classes it shows (>= 8
# pixels; still image-level labels, of smaller images); pseudo labels are made for whole
# images (whose labels count classes with >= 16 pixels).
dataset_type = 'SyntheticCityscapesWSSSDataset'
data_root = 'data/synthetic_cityscapes_128x256'
synthetic_cfg = dict(num_train=300, num_val=60, seed=0, image_size=(128, 256))
crop_size = (32, 64)
num_cam_classes = 8
image_labels = dict(type='LoadImageLevelLabels', num_classes=num_cam_classes, min_pixels=16)
wsss_meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                  'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
                  'gt_class_labels')
cam_train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations', num_classes=9),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.9, 1.3), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    # demo choice, not PSA's ColorJitter: the demo's README numbers were measured with it
    dict(type='PhotoMetricDistortion'),
    dict(type='LoadImageLevelLabels', num_classes=num_cam_classes, min_pixels=8),  # of the crop
    dict(type='PackSegInputs', meta_keys=wsss_meta_keys)
]
test_pipeline = [
    # mmseg's LoadImageFromFile: mmseg's MMSegInferencer finds it by this name to read images
    # it is given (training pipelines use LoadCheckedImageFromFile)
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedAnnotations', num_classes=9),
    image_labels,
    dict(type='PackSegInputs', meta_keys=wsss_meta_keys)
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=cam_train_pipeline,
        **synthetic_cfg))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline,
        **synthetic_cfg))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
