# The PSA pseudo-label runner with the ResNet-50-D8 CAM network and AffinityNet (any mmseg
# backbone works); usage as psa-pseudo-labels_resnet38-d8_voc12aug.py.
_base_ = ['./psa-cam_r50-d8_4xb4-10k_voc12aug-448x448.py']
model = dict(pretrained=None)  # weights come from --cam-checkpoint
test_evaluator = dict(_delete_=True, type='PseudoLabelMetric')
test_cfg = dict(
    _delete_=True,
    type='PseudoLabelLoop',
    stages=['cam', 'rw', 'rw_crf'],
    aff_model='{{ fileDirname }}/psa-affinitynet_r50-d8_4xb2-10k_voc12aug-448x448.py',
    cam_inference=dict(amp=None, channels_last='auto', fold_bn=True),  # float32 CAMs
    crf=dict(workers='auto'))  # one CRF process a core; the other settings: PSA's (PseudoLabelLoop defaults)
