# DeepLab v2 R-101 + the fully connected CRF at test time with DeepLab v2 ResNet-101's published
# VOC settings (w1 4, sigma_alpha 67, sigma_beta 3, w2 3, sigma_gamma 1).
_base_ = ['./deeplabv2_r101-d8_4xb4-20k_voc12aug-512x512.py', '../_base_/models/deeplabv2_crf.py']
model = dict(
    _delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model,
    crf=_base_.deeplabv2_r101_crf)
