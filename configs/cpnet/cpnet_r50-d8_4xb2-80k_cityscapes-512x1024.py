# CPNet (context prior, CVPR 2020) R-50-D8 on Cityscapes, 512x1024 crops, 80k iterations.
# The official head only runs when the stride-8 feature map equals the prior grid. With
# 512x1024 crops that map is 64x128, so prior_size=(64, 128) (each prior cell = 8x8 pixels,
# as in the official 512x512 / prior 64 setting), and testing slides 512x1024 windows.
_base_ = [
    '../_base_/models/cpnet_r50-d8.py', 'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmaffseg'], allow_failed_imports=False)
crop_size = (512, 1024)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(prior_size=(64, 128)),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 683)))
