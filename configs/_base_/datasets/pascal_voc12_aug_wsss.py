# PASCAL VOC 2012 + SBD ("train_aug", 10582 images = train.txt + aug.txt of mmseg's
# tools/dataset_converters/voc_aug.py) for weakly supervised segmentation (PSA): 20 image-level
# classes, 21 segmentation classes (0 background). The CAM network sees image-level labels
# only. They are PSA's official labels (jiwoon-ahn/psa voc12/cls_labels.npy, made from the VOC
# XML annotations), converted once, by a step that runs no code from the file, with
#   python tools/dataset_converters/psa_cls_labels.py psa/voc12/cls_labels.npy \
#       data/VOCdevkit/VOC2012/cls_labels.json
# (LoadImageLevelLabels never unpickles). For a dataset without XML annotations use
# image_labels_from_masks (the classes present in the masks; needs LoadAnnotations before it).
dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (448, 448)
cls_label_file = data_root + '/cls_labels.json'
image_labels = dict(type='LoadImageLevelLabels', num_classes=20, label_file=cls_label_file)
image_labels_from_masks = dict(type='LoadImageLevelLabels', num_classes=20)
# torchvision's ColorJitter as in the official train_cls.py / train_aff.py
psa_color_jitter = dict(
    type='ColorJitter', brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1)
wsss_meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                  'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
                  'gt_class_labels')
# PSA's classifier augmentation (official train_cls.py): long side resized to a random integer
# in 256..512 (PIL bicubic), horizontal flip, ColorJitter(0.3, 0.3, 0.3, 0.1), random 448 crop
# (imutils.RandomCrop: an axis shorter than 448 lands at a random offset in a zero canvas).
# The reference normalises before cropping, so its canvas is 0 after normalisation: the
# canvas here is the data preprocessor's mean pixel, in the loaded BGR order (the model configs'
# mean=[123.675, 116.28, 103.53] in RGB). int(256 * U[1, 513/256)) is uniform over the integers
# 256..512. No masks: the labels come from the label file.
psa_mean_bgr = (103.53, 116.28, 123.675)
cam_train_pipeline = [
    dict(type='LoadImageFromFile'),
    image_labels,
    dict(type='RandomResize', scale=(256, 256), ratio_range=(1.0, 513 / 256), keep_ratio=True,
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    psa_color_jitter,
    dict(type='RandomCanvasCrop', crop_size=crop_size, img_pad_val=psa_mean_bgr),
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
