# PSA step 5: DeepLab v2 (R-101-D8, mmseg's 20k VOC recipe) trained on the PSA pseudo labels of
# the 10582 train_aug images instead of their masks; validation on VOC val ground truth.
# The labels come from
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_resnet38-d8_voc12aug.py \
#       --cam-checkpoint CAM.pth --aff-checkpoint AFF.pth
# (set pseudo_label_dir below if you used another --out; rw_crf = CAM + RW + dCRF).
#   bash tools/dist_train.sh configs/psa/deeplabv2_r101-d8_4xb4-20k_voc12aug-psa-pseudo-512x512.py 4
_base_ = ['../deeplabv2/deeplabv2_r101-d8_4xb4-20k_voc12aug-512x512.py']
pseudo_label_dir = '{{ fileDirname }}/../../work_dirs/psa-pseudo-labels_resnet38-d8_voc12aug/' \
    'pseudo_labels/rw_crf'
train_dataloader = dict(
    # the base's VOC train + SBD aug images, labelled by the PSA pseudo labels
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(d,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path=pseudo_label_dir),
                 pipeline=_base_.train_pipeline)
            for d in _base_.train_dataloader.dataset.datasets
        ]))
