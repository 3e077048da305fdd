# HANet (CVPR 2020) on DeepLabV3+ R-50-D8, Cityscapes 512x1024, 80k iterations, 4 GPUs x 2.
# The official DeepLabV3+ HANet layout: plain ASPP (rates 12/24/36 at output stride 8), 1x1
# projection, 256-channel decoder, HANet at layer4, the ASPP concatenation, the projection and
# the decoder output (r=64, kernel 3, three convs, sinusoid positions injected after the first
# conv, position noise 0.5), FCN auxiliary head on layer3 with weight 0.4.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    # RandomCropWithOffset: HANet's positions need where each training crop lies
    '../_base_/datasets/cityscapes_crop-offset.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
    '../_base_/models/hanet_aspp_head.py',  # hanet_aspp_head
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    # gives HANet the absolute image row of every input row, also in sliding windows
    type='HANetEncoderDecoder',
    data_preprocessor=dict(size=crop_size),
    # official dilation pattern: every block of layer3 / layer4 dilated by 2 / 4
    backbone=dict(contract_dilation=False),
    decode_head=dict(_delete_=True, **_base_.hanet_aspp_head, norm_cfg=norm_cfg),
    auxiliary_head=dict(channels=512, align_corners=True),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 683)))
