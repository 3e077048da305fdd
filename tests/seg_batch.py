# Copyright (c) mmaffseg contributors. All rights reserved.
"""A random segmentation batch in the form ``model.data_preprocessor`` takes."""
from typing import Tuple

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample


def random_seg_batch(num_classes: int, size: Tuple[int, int], n: int = 2, seed: int = 0) -> dict:
    """``dict(inputs=[uint8 (3, H, W)] * n, data_samples=[SegDataSample with gt_sem_seg])``."""
    rng = np.random.default_rng(seed)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.from_numpy(rng.integers(0, 256, (3, ) + tuple(size), dtype=np.uint8)))
        sample = SegDataSample(metainfo=dict(ori_shape=size, img_shape=size, pad_shape=size))
        label = rng.integers(0, num_classes, (1, ) + tuple(size))
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(label))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
