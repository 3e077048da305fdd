# DeepLab v1 LargeFOV + the fully connected CRF at test time (DeepLab's VOC settings).
_base_ = [
    './deeplabv1_vgg16-largefov_4xb4-20k_voc12aug-512x512.py', '../_base_/models/deeplab_crf.py'
]
model = dict(
    _delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model, crf=_base_.deeplab_crf)
