# Quick start with the dense CRF at test time; same training as the plain quick-start config,
# checkpoints interchangeable. CRF: DeepLab v2 ResNet-101's published settings (w1 4,
# sigma_alpha 67, sigma_beta 3, w2 3, sigma_gamma 1): this is the same DeepLab v2 ResNet model
# (dilated ResNet + ASPP-v2) with a smaller backbone, DeepLab published no ResNet-18 values,
# and none were tuned here on the synthetic data.
_base_ = [
    './deeplabv2_r18-d8_quickstart_synthetic-128x256.py', '../_base_/models/deeplabv2_crf.py'
]
model = dict(
    _delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model,
    crf=_base_.deeplabv2_r101_crf)
