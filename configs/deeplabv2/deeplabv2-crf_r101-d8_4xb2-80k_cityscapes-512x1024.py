# DeepLab v2 R-101 + the fully connected CRF at test time with DeepLab v2 ResNet-101's published
# settings (w1 4, sigma_alpha 67, sigma_beta 3, w2 3, sigma_gamma 1; tuned on VOC, not on
# Cityscapes). Trains as the plain config; checkpoints of the two are interchangeable.
_base_ = [
    './deeplabv2_r101-d8_4xb2-80k_cityscapes-512x1024.py', '../_base_/models/deeplabv2_crf.py'
]
model = dict(
    _delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model,
    crf=_base_.deeplabv2_r101_crf)
