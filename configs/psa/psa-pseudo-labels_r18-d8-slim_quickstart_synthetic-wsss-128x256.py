# PSA pseudo-label runner on the synthetic street scenes (steps 2 and 4):
#   # AffinityNet training labels for all training images
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py \
#       --cam-checkpoint CAM.pth --affinity-labels --cfg-options test_dataloader.dataset.indices=None
#   # CAM -> random walk -> dCRF on the first 60 training images (the demo's selection set)
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py \
#       --cam-checkpoint CAM.pth --aff-checkpoint AFF.pth
#   # the same on the 60 validation images, scored (PSA Table 1 layout; the demo's held-out set)
#   ... --out DIR_VAL --cfg-options test_dataloader.dataset.data_prefix.img_path=leftImg8bit/val \
#       test_dataloader.dataset.data_prefix.seg_map_path=gtFine/val test_dataloader.dataset.indices=None
#   # the alphas / beta chosen on the selection set: tools/select_psa_params.py
#   # (see configs/psa/benchmarks.md)
# The model is the CAM classifier of the _base_ config; the AffinityNet comes from aff_model.
_base_ = ['./psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py']
# the base test pipeline: no resizing; ground truth and image-level labels
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        indices=60))  # the demo's selection set (its alphas / beta are chosen on their masks)
test_evaluator = dict(_delete_=True, type='PseudoLabelMetric')
test_cfg = dict(
    _delete_=True,
    type='PseudoLabelLoop',
    stages=['cam', 'rw', 'rw_crf'],
    aff_model='{{ fileDirname }}/psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-128x256.py',
    cam_scales=(1.0, 0.5, 1.5, 2.0),
    cam_flip=True,
    cam_bg_score=0.2,
    # PSA's VOC values are 4 / 32 / 16 / 8. The demo's CAMs, trained from scratch in a few
    # minutes, spread past the objects: a stronger background (smaller alphas) keeps the
    # affinity labels precise (foreground precision 75% at low_alpha 2 against 49% at 4) and
    # the walk's start inside the objects; beta 16 sharpens the weaker learned affinities.
    # Chosen on the demo's selection set (the first 60 training images, with their masks) by
    # tools/select_psa_params.py; Table 1 is reported on the validation images
    # (configs/psa/benchmarks.md).
    low_alpha=2.0,
    high_alpha=16.0,
    rw_alpha=2.0,
    rw_beta=16.0,
    rw_logt=8,
    crf=dict(workers='auto'),  # PSA's CRF settings (DenseCRF defaults), one process a core
    save_cams=True,
    num_threads=2)
