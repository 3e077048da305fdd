# PSA step 5 with the paper's segmentation model: ResNet-38 (output stride 8) + PSASegHead (3x3
# conv dilation 12 to 512 channels, ReLU, dropout, 3x3 conv dilation 12 to the 21 classes),
# trained on the PSA pseudo labels of train_aug (see
# deeplabv2_r101-d8_4xb4-20k_voc12aug-psa-pseudo-512x512.py for making them). PSA does not
# publish this model's training recipe: mmseg's 20k VOC schedule (SGD lr 0.01, poly, 512x512
# crops, batch 16) with PSA's frozen BN and ImageNet ResNet-38 weights.
#   bash tools/dist_train.sh configs/psa/psa-seg_resnet38-d8_4xb4-20k_voc12aug-psa-pseudo-512x512.py 4
_base_ = ['./deeplabv2_r101-d8_4xb4-20k_voc12aug-psa-pseudo-512x512.py']
model = dict(
    _delete_=True,
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512)),
    backbone=dict(
        type='ResNet38',
        out_indices=(5, ),
        frozen_stages=1,
        norm_eval=True,
        norm_cfg=dict(type='BN', requires_grad=False),
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/resnet38_mmaffseg.pth', prefix='backbone.')),
    decode_head=dict(
        type='PSASegHead',
        in_channels=4096,
        in_index=0,
        channels=512,
        dilation=12,
        dropout_ratio=0.5,
        num_classes=21,
        norm_cfg=None,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}))
