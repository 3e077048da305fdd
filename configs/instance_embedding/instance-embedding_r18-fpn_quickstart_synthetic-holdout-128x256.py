# Selection run of the quick-start: fit on 240 of the 300 synthetic training images and
# validate / test on the other 60 (every 5th training image, held back with its masks), so that
# settings (the seediness background weight, the mask-NMS threshold, ...) are chosen without
# looking at the validation images the README reports. Report the chosen setting with the
# quick-start config itself, whose val / test split is the untouched validation images.
#   python tools/train.py configs/instance_embedding/instance-embedding_r18-fpn_quickstart_synthetic-holdout-128x256.py
_base_ = ['./instance-embedding_r18-fpn_quickstart_synthetic-128x256.py']
train_dataloader = dict(dataset=dict(holdout='exclude', holdout_every=5))
val_dataloader = dict(
    dataset=dict(
        holdout='only',
        holdout_every=5,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train')))
test_dataloader = val_dataloader
