# Copyright (c) mmaffseg contributors. All rights reserved.
"""mIoU of trivial predictors on a config's validation set: the floor a trained model must beat.

    python tools/analysis_tools/trivial_baseline.py CONFIG [--max-train N] [--cfg-options ...]

Two predictors that never look at the image, scored with mmseg's ``IoUMetric`` exactly as the
config's validation does:

* ``majority``: every pixel gets the most frequent class of the training labels;
* ``row prior``: every pixel gets the most frequent training class of its image row (after
  resizing label maps to the validation size), i.e. a pure height prior - strong on street
  scenes, where sky is on top and road at the bottom.
"""
import argparse

import numpy as np
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.registry import DATASETS
from mmseg.structures import SegDataSample

import mmaffseg  # noqa: F401
from mmaffseg.cli import CfgOptionsAction, config_errors_exit, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='mIoU of image-blind predictors')
    parser.add_argument('config')
    parser.add_argument('--max-train', type=int, default=0,
                        help='training images used for the statistics (0: all)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args()


def _labels(dataset, limit: int = 0):
    """Ground-truth label maps of ``dataset`` (through its own pipeline), one at a time."""
    n = len(dataset) if limit <= 0 else min(limit, len(dataset))
    for i in range(n):
        yield dataset[i]['data_samples'].gt_sem_seg.data[0].numpy()


def main() -> None:
    args = parse_args()
    with config_errors_exit():  # e.g. a misspelt --cfg-options key
        cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    train_cfg = cfg.train_dataloader.dataset.copy()
    train_cfg.pipeline = cfg.val_dataloader.dataset.pipeline  # no augmentation, val size
    train_set = DATASETS.build(train_cfg)
    classes = val_set.metainfo['classes']
    num_classes = len(classes)
    ignore = val_set.ignore_index

    val_labels = list(_labels(val_set))
    height = val_labels[0].shape[0]
    class_counts = np.zeros(num_classes, np.int64)
    row_counts = np.zeros((height, num_classes), np.int64)
    for label in _labels(train_set, args.max_train):
        if label.shape[0] != height:
            label = torch.nn.functional.interpolate(
                torch.from_numpy(label)[None, None].float(), size=(height, label.shape[1]),
                mode='nearest')[0, 0].long().numpy()
        valid = label != ignore
        class_counts += np.bincount(label[valid], minlength=num_classes)[:num_classes]
        for r in range(height):
            row = label[r][valid[r]]
            row_counts[r] += np.bincount(row, minlength=num_classes)[:num_classes]
    majority = int(class_counts.argmax())
    row_class = row_counts.argmax(1)

    for name, predict in (('majority', lambda gt: np.full_like(gt, majority)),
                          ('row prior', lambda gt: np.repeat(
                              row_class[:gt.shape[0], None], gt.shape[1], axis=1))):
        metric = IoUMetric(iou_metrics=['mIoU'])
        metric.dataset_meta = val_set.metainfo
        for gt in val_labels:
            sample = SegDataSample()
            sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt)[None])
            sample.pred_sem_seg = PixelData(data=torch.from_numpy(predict(gt))[None])
            metric.process({}, [sample.to_dict()])
        result = metric.compute_metrics(metric.results)
        print(f'{name:9s} predictor: mIoU {result["mIoU"]:.2f}  aAcc {result["aAcc"]:.2f}  '
              f'({len(val_labels)} val images; majority class: {classes[majority]})')


if __name__ == '__main__':
    main()
