# Second stage of the synthetic PSA demo: DeepLab v2 (R-18-D8, from scratch) trained on the
# pseudo labels that tools/wsss_demo.py makes (CAM + RW + dCRF of the first 60 training images,
# work_dirs/psa_demo/pseudo_labels/rw_crf), validated on the ground truth of the 60 val images
# (9 classes: background + the 8 thing classes).
#   python tools/train.py configs/psa/deeplabv2_r18-d8_quickstart_synthetic-wsss-psa-pseudo-128x256.py
_base_ = ['../deeplabv2/deeplabv2_r18-d8_quickstart_synthetic-128x256.py']
pseudo_label_dir = '{{ fileDirname }}/../../work_dirs/psa_demo/pseudo_labels/rw_crf'
wsss_data = dict(
    type='SyntheticCityscapesWSSSDataset',
    data_root='data/synthetic_cityscapes_128x256',
    num_train=300,
    num_val=60,
    seed=0,
    image_size=(128, 256))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        map_labels=False,  # pseudo labels are WSSS labels already
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path=pseudo_label_dir),
        indices=60,  # the images the demo labels
        pipeline=[
            dict(type='LoadCheckedImageFromFile'),
            dict(type='LoadCheckedAnnotations', num_classes=9),
            dict(type='RandomResize', scale=(256, 128), ratio_range=(0.75, 1.5),
                 keep_ratio=True),
            dict(type='RandomCrop', crop_size=(128, 256), cat_max_ratio=0.75),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PhotoMetricDistortion'),
            dict(type='PackSegInputs')
        ],
        **wsss_data))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=[
            dict(type='LoadImageFromFile'),  # the name mmseg's MMSegInferencer looks for
            dict(type='LoadCheckedAnnotations', num_classes=9),
            dict(type='PackSegInputs')
        ],
        **wsss_data))
test_dataloader = val_dataloader
model = dict(decode_head=dict(num_classes=9))
