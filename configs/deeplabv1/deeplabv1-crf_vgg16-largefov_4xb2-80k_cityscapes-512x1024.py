# DeepLab v1 LargeFOV + the fully connected CRF at test time (DeepLab's settings). Trains as the
# plain config; checkpoints of the two are interchangeable.
_base_ = [
    './deeplabv1_vgg16-largefov_4xb2-80k_cityscapes-512x1024.py',
    '../_base_/models/deeplab_crf.py'
]
model = dict(
    _delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model, crf=_base_.deeplab_crf)
