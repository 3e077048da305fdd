# AffinityNet on mmseg's ResNet-50-D8 (levels 1-3: 512, 1024, 2048 channels at stride 8), on
# the affinity labels made with the R-50-D8 CAM network:
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_r50-d8_voc12aug.py \
#       --cam-checkpoint CAM.pth --affinity-labels
#   bash tools/dist_train.sh configs/psa/psa-affinitynet_r50-d8_4xb2-10k_voc12aug-448x448.py 4
_base_ = ['./psa-affinitynet_resnet38-d8_4xb2-10k_voc12aug-448x448.py']
affinity_label_dir = '{{ fileDirname }}/../../work_dirs/psa-pseudo-labels_r50-d8_voc12aug/' \
    'pseudo_labels/affinity_labels'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                type='PascalVOCDataset',
                data_root='data/VOCdevkit/VOC2012',
                data_prefix=dict(img_path='JPEGImages', seg_map_path=affinity_label_dir),
                ann_file=f'ImageSets/Segmentation/{split}.txt',
                pipeline={{_base_.aff_train_pipeline}}) for split in ('train', 'aug')
        ]))
model = dict(
    pretrained='open-mmlab://resnet50_v1c',
    backbone=dict(
        _delete_=True,
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        frozen_stages=1,
        norm_eval=True,
        norm_cfg=dict(type='BN', requires_grad=False),
        contract_dilation=True,
        style='pytorch'),
    decode_head=dict(in_channels=(512, 1024, 2048), in_index=(1, 2, 3)))
