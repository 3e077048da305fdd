# AffinityNet on mmseg's ResNet-50-D8 (levels 1-3: 512, 1024, 2048 channels at stride 8), on
# the affinity labels made with the R-50-D8 CAM network:
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_r50-d8_voc12aug.py \
#       --cam-checkpoint CAM.pth --affinity-labels
#   bash tools/dist_train.sh configs/psa/psa-affinitynet_r50-d8_4xb2-10k_voc12aug-448x448.py 4
_base_ = [
    './psa-affinitynet_resnet38-d8_4xb2-10k_voc12aug-448x448.py',
    '../_base_/models/psa_r50-d8.py',  # psa_r50_d8_backbone
]
affinity_label_dir = '{{ fileDirname }}/../../work_dirs/psa-pseudo-labels_r50-d8_voc12aug/' \
    'pseudo_labels/affinity_labels'
train_dataloader = dict(
    # the base's VOC train + SBD aug images, labelled by the R-50 affinity labels
    dataset=dict(datasets=[
        dict(d, data_prefix=dict(img_path='JPEGImages', seg_map_path=affinity_label_dir))
        for d in _base_.train_dataloader.dataset.datasets
    ]))
model = dict(
    pretrained=_base_.psa_r50_d8_pretrained,
    backbone=dict(_delete_=True, **_base_.psa_r50_d8_backbone),
    decode_head=dict(in_channels=(512, 1024, 2048), in_index=(1, 2, 3)))
