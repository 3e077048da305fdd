# The PSA CAM classifier on mmseg's ResNet-50-D8 (ResNetV1c, dilations 1/1/2/4, output stride
# 8, ImageNet open-mmlab://resnet50_v1c) instead of ResNet-38: any mmseg backbone works. The
# head is the default CAM head: 3x3 conv 512 (+ SyncBN, ReLU), GAP, bias-free fc. Same
# recipe as the ResNet-38 config (frozen backbone BN, stem + layer1 frozen, 10x lr head).
#   bash tools/dist_train.sh configs/psa/psa-cam_r50-d8_4xb4-10k_voc12aug-448x448.py 4
_base_ = ['./psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py']
model = dict(
    pretrained='open-mmlab://resnet50_v1c',
    backbone=dict(
        _delete_=True,
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        frozen_stages=1,
        norm_eval=True,
        norm_cfg=dict(type='BN', requires_grad=False),
        contract_dilation=True,
        style='pytorch'),
    decode_head=dict(
        in_channels=2048,
        in_index=3,
        channels=512,
        num_convs=1,
        norm_cfg=dict(type='SyncBN', requires_grad=True)))
