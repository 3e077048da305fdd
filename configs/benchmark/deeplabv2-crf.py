# Benchmark: DeepLab v2 + the fully connected CRF at test time (CRFRefineSegmentor around
# ./deeplabv2.py), with DeepLab v2 ResNet-101's published CRF settings (tuned on VOC). Trains as
# ./deeplabv2.py: the suite evaluates that run's checkpoint with the CRF instead of retraining.
_base_ = ['./deeplabv2.py', '../_base_/models/deeplabv2_crf.py']
model = dict(
    _delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model,
    crf=_base_.deeplabv2_r101_crf)
