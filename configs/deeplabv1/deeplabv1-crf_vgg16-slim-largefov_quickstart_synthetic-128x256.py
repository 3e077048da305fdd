# Quick start with the dense CRF at test time (DeepLab's settings); same training as the plain
# quick-start config, checkpoints interchangeable.
_base_ = [
    './deeplabv1_vgg16-slim-largefov_quickstart_synthetic-128x256.py',
    '../_base_/models/deeplab_crf.py'
]
model = dict(
    _delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model, crf=_base_.deeplab_crf)
