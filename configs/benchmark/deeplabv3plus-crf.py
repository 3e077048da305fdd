# Benchmark: the DeepLabV3+ baseline + the fully connected CRF at test time (CRFRefineSegmentor
# around ./deeplabv3plus.py), DeepLab v2 ResNet-101's published CRF settings. Trains as
# ./deeplabv3plus.py: the suite evaluates that run's checkpoint with the CRF.
_base_ = ['./deeplabv3plus.py', '../_base_/models/deeplabv2_crf.py']
model = dict(
    _delete_=True, type='CRFRefineSegmentor', segmentor=_base_.model,
    crf=_base_.deeplabv2_r101_crf)
