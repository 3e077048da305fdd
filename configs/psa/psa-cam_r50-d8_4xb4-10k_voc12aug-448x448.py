# The PSA CAM classifier on mmseg's ResNet-50-D8 (ResNetV1c, dilations 1/1/2/4, output stride
# 8, ImageNet open-mmlab://resnet50_v1c) instead of ResNet-38: any mmseg backbone works. The
# head is the default CAM head: 3x3 conv 512 (+ SyncBN, ReLU), GAP, bias-free fc. Same
# recipe as the ResNet-38 config (frozen backbone BN, stem + layer1 frozen, 10x lr head).
#   bash tools/dist_train.sh configs/psa/psa-cam_r50-d8_4xb4-10k_voc12aug-448x448.py 4
_base_ = [
    './psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py',
    '../_base_/models/psa_r50-d8.py',  # psa_r50_d8_backbone
]
model = dict(
    pretrained=_base_.psa_r50_d8_pretrained,
    backbone=dict(_delete_=True, **_base_.psa_r50_d8_backbone),
    decode_head=dict(
        in_channels=2048,
        in_index=3,
        channels=512,
        num_convs=1,
        norm_cfg=dict(type='SyncBN', requires_grad=True)))
