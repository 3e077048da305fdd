# CPNet R-101-D8 on Cityscapes (the paper's Cityscapes model), 512x1024 crops, 80k iterations.
_base_ = './cpnet_r50-d8_4xb2-80k_cityscapes-512x1024.py'
model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
