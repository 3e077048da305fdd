# Copyright (c) mmaffseg contributors. All rights reserved.
"""The per-pixel instance map of mmaffseg (a leaf: imports nothing else of mmaffseg).

The map (``results['gt_instance_map']``, packed as ``data_sample.gt_instance_map``; read from
Cityscapes' ``*_gtFine_instanceIds.png`` by
:func:`~mmaffseg.datasets.cityscapes_labels.decode_cityscapes_instance_ids`) is int32 of the
image's size:

- ``0``: the pixel belongs to no individual instance (stuff, or a crowd of a thing class;
  with ``crowd_as_ignore`` a crowd becomes ``ignore_index`` instead);
- ``1, 2, ...``: the instances, numbered in increasing raw-id order; the number
  ``ignore_index`` is skipped, so ids stay unique however many instances there are;
- ``ignore_index`` (255): void, i.e. a raw ``labelId`` in ``void_label_ids`` or an
  ``ignore_index`` pixel of the semantic map loaded beside it.

:func:`segment_labels` turns (semantic map, instance map) into class-agnostic segment ids: every
instance is one segment, and every stuff class (all its pixels) is one segment.
:func:`instance_classes` lists the instances of a map with the class of each;
:func:`stack_instance_maps` batches the packed maps of a list of data samples.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def segment_labels(sem_seg: Tensor,
                   instance_map: Optional[Tensor] = None,
                   ignore_index: int = 255) -> Tensor:
    """Class-agnostic segment ids: one per instance, one per stuff class.

    Args:
        sem_seg (Tensor): Semantic labels, integer, any shape; ``ignore_index`` is void.
        instance_map (Tensor, optional): mmaffseg instance map of the same shape. ``None`` (a
            dataset without instances) returns the semantic labels.
        ignore_index (int): Void value of both inputs and of the output. Defaults to 255.

    Returns:
        Tensor: int64 of the same shape: semantic label where the instance map is 0,
        ``ignore_index + 1 + instance id`` on instances, ``ignore_index`` where either input is
        void.
    """
    labels = sem_seg.long()
    if instance_map is None:
        return labels
    if instance_map.shape != sem_seg.shape:
        raise ValueError(f'instance map {tuple(instance_map.shape)} and semantic map '
                         f'{tuple(sem_seg.shape)} must have the same shape')
    inst = instance_map.long()
    void = (labels == ignore_index) | (inst == ignore_index)
    labels = torch.where(inst > 0, inst + ignore_index + 1, labels)
    return labels.masked_fill(void, ignore_index)


def instance_classes(instance_map: Tensor,
                     sem_seg: Tensor,
                     class_ids: Sequence[int],
                     ignore_index: int = 255) -> Tuple[Tensor, Tensor]:
    """The instances of an instance map and the class of each (majority of its pixels).

    Args:
        instance_map (Tensor): mmaffseg instance map, integer, any shape.
        sem_seg (Tensor): Semantic labels of the same shape.
        class_ids (Sequence[int]): Semantic labels of the instance classes, e.g. Cityscapes'
            thing trainIds ``(11, ..., 18)``.
        ignore_index (int): Void value of the instance map. Defaults to 255.

    Returns:
        tuple[Tensor, Tensor]: ``ids`` (n,) int64, the instance ids present in increasing
        order, and ``classes`` (n,) int64, the position in ``class_ids`` of the semantic label
        most of the instance's pixels carry, or -1 when that label is not in ``class_ids``.
    """
    if instance_map.shape != sem_seg.shape:
        raise ValueError(f'instance map {tuple(instance_map.shape)} and semantic map '
                         f'{tuple(sem_seg.shape)} must have the same shape')
    inst = instance_map.reshape(-1).long()
    sem = sem_seg.reshape(-1).long().to(inst.device)
    keep = (inst > 0) & (inst != ignore_index)
    ids, inverse = torch.unique(inst[keep], return_inverse=True)
    sem = sem[keep]
    size = max(max(class_ids, default=0), int(sem.max()) if sem.numel() else 0) + 1
    lut = inst.new_full((size, ), -1)
    lut[torch.as_tensor(list(class_ids), dtype=torch.long, device=inst.device)] = torch.arange(
        len(class_ids), device=inst.device)
    # Votes per (instance, class + 1); column 0 collects labels outside class_ids.
    votes = inst.new_zeros((len(ids), len(class_ids) + 1))
    votes.index_put_((inverse, lut[sem.clamp_min(0)] + 1), torch.ones_like(inverse),
                     accumulate=True)
    return ids, votes.argmax(1) - 1


def stack_instance_maps(batch_data_samples: list, ignore_index: int = 255) -> Tensor:
    """Instance maps of a batch, padded like mmseg pads ``gt_sem_seg``.

    mmseg's data preprocessor pads ``gt_sem_seg`` (bottom and right) to the batch input size but
    leaves other maps alone; this pads every ``gt_instance_map`` the same way with
    ``ignore_index``.

    Args:
        batch_data_samples (list[SegDataSample]): Samples with ``gt_instance_map`` (packed by
            ``PackSegInstanceInputs``) and ``gt_sem_seg``.
        ignore_index (int): Padding value. Defaults to 255.

    Returns:
        Tensor: (B, H, W) int64 at the size of ``gt_sem_seg``.
    """
    maps = []
    for sample in batch_data_samples:
        if 'gt_instance_map' not in sample:
            raise KeyError('a data sample has no gt_instance_map: add LoadInstanceMap to the '
                           'pipeline and pack with PackSegInstanceInputs')
        inst = sample.gt_instance_map.data[0].long()
        height, width = sample.gt_sem_seg.shape
        pad_h, pad_w = height - inst.shape[-2], width - inst.shape[-1]
        if pad_h < 0 or pad_w < 0:
            raise ValueError(f'gt_instance_map {tuple(inst.shape)} is larger than gt_sem_seg '
                             f'{(height, width)}')
        maps.append(F.pad(inst, (0, pad_w, 0, pad_h), value=ignore_index))
    return torch.stack(maps)
