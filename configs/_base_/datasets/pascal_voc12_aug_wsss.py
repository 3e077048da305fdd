# PASCAL VOC 2012 + SBD ("train_aug", 10582 images = train.txt + aug.txt of mmseg's
# tools/dataset_converters/voc_aug.py) for weakly supervised segmentation (PSA): 20 image-level
# classes, 21 segmentation classes (0 background). The CAM network sees image-level labels
# only: LoadImageLevelLabels derives them from the masks (SegmentationClass /
# SegmentationClassAug); to use PSA's own file instead set
#   image_labels = dict(type='LoadImageLevelLabels', num_classes=20,
#                       label_file='data/VOCdevkit/VOC2012/cls_labels.npy')
# and drop LoadAnnotations from cam_train_pipeline.
dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (448, 448)
image_labels = dict(type='LoadImageLevelLabels', num_classes=20)
wsss_meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                  'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
                  'gt_class_labels')
# PSA's classifier augmentation: long side 256-512, flip, colour jitter, 448 crop (zero padded)
cam_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    image_labels,  # before any crop: the labels describe the whole image
    dict(type='RandomResize', scale=(256, 256), ratio_range=(1.0, 2.0), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs', meta_keys=wsss_meta_keys)
]
# whole images at their own size (CAM validation and the pseudo-label runner)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    image_labels,
    dict(type='PackSegInputs', meta_keys=wsss_meta_keys)
]
voc_train = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
    ann_file='ImageSets/Segmentation/train.txt',
    pipeline=cam_train_pipeline)
sbd_aug = dict(
    type=dataset_type,
    data_root=data_root,
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
    ann_file='ImageSets/Segmentation/aug.txt',
    pipeline=cam_train_pipeline)
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ConcatDataset', datasets=[voc_train, sbd_aug]))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
# "test" = the images to label: train_aug at full resolution, ground truth for scoring (the
# pseudo-label configs read it; tools/test.py scores single-scale CAMs on it)
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            dict(voc_train, pipeline=test_pipeline),
            dict(sbd_aug, pipeline=test_pipeline),
        ]))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
