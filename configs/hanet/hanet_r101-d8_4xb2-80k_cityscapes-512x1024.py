# HANet on DeepLabV3+ R-101-D8 (the official paper setting), Cityscapes 512x1024, 80k iterations.
# To load weights converted from the official release (tools/model_converters/hanet2mmaffseg.py)
# also set backbone=dict(stem_channels=128): the official ResNet-101 stem ends with 128 channels.
_base_ = './hanet_r50-d8_4xb2-80k_cityscapes-512x1024.py'
model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
