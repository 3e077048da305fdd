# PSA pseudo-label runner on PASCAL VOC 2012 + SBD train_aug (10582 images) with ResNet-38:
#   # step 2: AffinityNet training labels (CAM -> low/high alpha dCRF)
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_resnet38-d8_voc12aug.py \
#       --cam-checkpoint CAM.pth --affinity-labels
#   # step 4: pseudo labels CAM -> random walk -> dCRF for the second stage
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_resnet38-d8_voc12aug.py \
#       --cam-checkpoint CAM.pth --aff-checkpoint AFF.pth
#   # several GPUs: torchrun --nproc_per_node 4 tools/make_pseudo_labels.py ... --launcher pytorch
# Outputs: work_dirs/psa-pseudo-labels_resnet38-d8_voc12aug/pseudo_labels/{cams,cam,
# affinity_labels,rw,rw_crf}/<name>.png (or --out). The images come from the base config's
# test_dataloader (train_aug at full size, with ground truth, so the labels are also scored);
# PSA's Table 1 uses VOC train only: psa-pseudo-labels_resnet38-d8_voc12-train.py.
# The CAM model (the runner's model) is the one of the CAM training config; its weights come
# from --cam-checkpoint, so the ImageNet initialisation is not needed here.
_base_ = ['./psa-cam_resnet38-d8_4xb4-10k_voc12aug-448x448.py']
model = dict(backbone=dict(init_cfg=None))
test_evaluator = dict(_delete_=True, type='PseudoLabelMetric')
test_cfg = dict(
    _delete_=True,
    type='PseudoLabelLoop',
    stages=['cam', 'rw', 'rw_crf'],
    aff_model='{{ fileDirname }}/psa-affinitynet_resnet38-d8_4xb2-10k_voc12aug-448x448.py',
    cam_scales=(1.0, 0.5, 1.5, 2.0),  # + flips, as the reference
    cam_flip=True,
    # float32 as the reference (bf16 changes labels, see the model card); BNs folded into the
    # convs, channels-last on GPUs: float32 rounding only
    cam_inference=dict(amp=None, channels_last='auto', fold_bn=True),
    cam_bg_score=0.2,  # the "CAM" row of Table 1
    low_alpha=4.0,
    high_alpha=32.0,  # 24 in the paper, 32 in the released code
    rw_alpha=16.0,
    rw_beta=8.0,
    rw_logt=8,  # t = 256 steps
    crf=dict(workers='auto'),  # PSA's CRF (DenseCRF defaults), one process a core of each rank
    save_cams=True)
