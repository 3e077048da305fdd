# Copyright (c) mmaffseg contributors. All rights reserved.
"""Random segmentation batches for benchmarks and tests (no dataset needed)."""
from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample


def random_seg_batch(num_classes: int,
                     size: Sequence[int],
                     n: int = 2,
                     seed: int = 0,
                     ori_size: Optional[Sequence[int]] = None,
                     device: str = 'cpu') -> dict:
    """A batch in the form ``model.data_preprocessor`` takes, with random pixels and labels.

    Args:
        num_classes (int): Labels are drawn from ``[0, num_classes)``.
        size (Sequence[int]): Image (and label) ``(H, W)``.
        n (int): Batch size. Default: 2.
        seed (int): Seed of the numpy generator. Default: 0.
        ori_size (Sequence[int], optional): ``ori_shape`` metainfo, e.g. the original image size
            of a model that sees a resized image. Default: ``size``.
        device (str): Device of the tensors. Default: 'cpu'.

    Returns:
        dict: ``inputs`` (uint8 ``(3, H, W)`` tensors) and ``data_samples`` (``SegDataSample``
        with ``gt_sem_seg``).
    """
    size = tuple(int(s) for s in size)
    ori_size = size if ori_size is None else tuple(int(s) for s in ori_size)
    rng = np.random.default_rng(seed)
    inputs, samples = [], []
    for _ in range(n):
        image = rng.integers(0, 256, (3, ) + size, dtype=np.uint8)
        inputs.append(torch.from_numpy(image).to(device))
        sample = SegDataSample(metainfo=dict(ori_shape=ori_size, img_shape=size, pad_shape=size))
        label = torch.from_numpy(rng.integers(0, num_classes, (1, ) + size)).to(device)
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
