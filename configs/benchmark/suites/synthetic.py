# The synthetic benchmark suite: the protocol of ../_base_/protocol.py at 1/8 of the Cityscapes
# resolution on the embedded synthetic street scenes (Cityscapes layout, 19 classes, 300 train /
# 60 val images of 256x512, generated on first use), on CPU. Changes, identical for every
# method: the data, resized to 128x256 as Cityscapes' 1024x2048 (random scale 0.5-2 for
# training), 64x128 crops, evaluation on the whole 128x256 image (CPNet, which cannot: 64x128
# sliding windows with stride 43x85, 3 x 3 windows as 512x1024 / 341x683 on 1024x2048), mIoU
# at the label resolution (256x512); the schedule
# (max_iters below, same SGD lr 0.01 / poly / batch 2, no validation during training); no
# ImageNet weights; BN instead of SyncBN; a slim ResNet-50-D8 (base width 16 instead of 64,
# stem 32: every stage and head input 1/4 as wide; the heads' widths in method_options).
#   python tools/benchmark_suite.py synthetic --data-root data/synthetic_cityscapes --work-dir W
_base_ = ['./cityscapes.py']
max_iters = 300  # what fit the CPU budget of the README's run (2 processes, ~40 min)
crop = (64, 128)
# the protocol's sliding windows at this resolution (CPNet; every method with --test-mode slide)
_slide = dict(mode='slide', crop_size=crop, stride=(43, 85))
_synthetic = dict(num_train=300, num_val=60, seed=0, image_size=(256, 512))
_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedAnnotations', num_classes=19),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCropWithOffset', crop_size=crop, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                                          'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                                          'reduce_zero_label', 'crop_offset')),
]
_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadCheckedAnnotations', num_classes=19),
    dict(type='PackSegInputs'),
]
_tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale_factor=r / 2, keep_ratio=True)
             for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadCheckedAnnotations', num_classes=19)], [dict(type='PackSegInputs')]
        ])
]
options = dict(
    crop_size=crop,
    bench_slide_test_cfg=_slide,
    train_pipeline=_train_pipeline,
    test_pipeline=_test_pipeline,
    tta_pipeline=_tta_pipeline,
    train_dataloader=dict(
        num_workers=1,
        dataset=dict(type='SyntheticCityscapesDataset', pipeline=_train_pipeline,
                     **_synthetic)),
    # mIoU on the first 20 of the 60 validation images (CPU budget)
    val_dataloader=dict(
        num_workers=0,
        persistent_workers=False,
        dataset=dict(type='SyntheticCityscapesDataset', pipeline=_test_pipeline, indices=20,
                     **_synthetic)),
    test_dataloader=dict(
        num_workers=0,
        persistent_workers=False,
        dataset=dict(type='SyntheticCityscapesDataset', pipeline=_test_pipeline, indices=20,
                     **_synthetic)),
    train_cfg=dict(max_iters=max_iters, val_interval=max_iters, val_begin=max_iters + 1),
    param_scheduler=[dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
                          by_epoch=False)],
    default_hooks=dict(
        logger=dict(interval=50),
        checkpoint=dict(interval=100)),
    model=dict(
        data_preprocessor=dict(size=crop),
        pretrained=None,
        backbone=dict(base_channels=16, stem_channels=32),
        auxiliary_head=dict(in_channels=256, channels=64)))
replace_sync_bn = True
_dlv3p_head = dict(in_channels=512, channels=128, c1_in_channels=64, c1_channels=12)
method_options = {
    'deeplabv3plus': dict(model=dict(decode_head=_dlv3p_head)),
    'hanet-neck': dict(model=dict(decode_head=_dlv3p_head,
                                  neck=dict(in_channels=[64, 128, 256, 512]))),
    'hanet-head': dict(model=dict(decode_head=dict(
        in_channels=512, channels=64, c1_in_channels=64, c1_channels=12,
        lower_in_channels=256))),
    'spnet': dict(model=dict(decode_head=dict(in_channels=512, channels=128))),
    'cpnet': dict(model=dict(
        decode_head=dict(in_channels=512, channels=128, prior_channels=128, prior_size=(8, 16)),
        test_cfg=_slide)),
    'deeplabv3plus-half-sssr': dict(model=dict(decode_head=_dlv3p_head)),
    'dsrl': dict(model=dict(decode_head=_dlv3p_head,
                            sr_decoder=dict(in_channels=(64, 512), channels=32,
                                            upsample_channels=(32, 16, 16)))),
    'deeplabv2': dict(model=dict(decode_head=dict(in_channels=512, channels=512))),
}
speed_images = 3  # images timed for fps (after 2 warm-up images)
image_size = (128, 256)  # the network's test input (fps / memory)
