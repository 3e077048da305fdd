# Quick start: DeepLab v1 LargeFOV with a 4x slimmer VGG-16 (16..128 channels, fc6/fc7 256) on the
# synthetic Cityscapes-layout data, 300 iterations on CPU, no pretraining, without the CRF.
_base_ = [
    '../_base_/models/deeplabv1_vgg16-largefov.py', '../_base_/datasets/synthetic_cityscapes.py',
    '../_base_/quickstart_runtime.py'
]
data_preprocessor = dict(size=_base_.crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(base_channels=16),
    decode_head=dict(in_channels=128, channels=256))
