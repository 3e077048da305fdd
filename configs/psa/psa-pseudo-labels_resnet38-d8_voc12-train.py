# PSA's Table 1 setting: pseudo labels of the 1464 VOC 2012 *train* images, scored against
# their ground truth (PSA reports CAM 48.0, CAM + RW 58.1, CAM + RW + dCRF 59.7).
#   python tools/make_pseudo_labels.py configs/psa/psa-pseudo-labels_resnet38-d8_voc12-train.py \
#       --cam-checkpoint CAM.pth --aff-checkpoint AFF.pth \
#       --out work_dirs/psa-pseudo-labels_resnet38-d8_voc12aug/pseudo_labels
# (with that --out the train images reuse the CAMs and labels of the train_aug run).
_base_ = ['./psa-pseudo-labels_resnet38-d8_voc12aug.py']
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='PascalVOCDataset',
        data_root='data/VOCdevkit/VOC2012',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline={{_base_.test_pipeline}}))
