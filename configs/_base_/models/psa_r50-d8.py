# mmseg's ResNet-50-D8 (ResNetV1c, dilations 1/1/2/4, output stride 8, ImageNet weights) with
# PSA's training choices (frozen BN, stem + layer1 frozen), for the R-50 PSA CAM and AffinityNet
# configs. Variables, not a model, because those configs already inherit a model:
#   model = dict(pretrained=_base_.psa_r50_d8_pretrained,
#                backbone=dict(_delete_=True, **_base_.psa_r50_d8_backbone), ...)
psa_r50_d8_pretrained = 'open-mmlab://resnet50_v1c'
psa_r50_d8_backbone = dict(
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
    style='pytorch')
