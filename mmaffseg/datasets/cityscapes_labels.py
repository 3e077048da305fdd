# Copyright (c) mmaffseg contributors. All rights reserved.
"""The 19 Cityscapes evaluation classes and their ids.

Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016.
``train_id`` is what ``*_gtFine_labelTrainIds.png`` holds (255 = ignore); ``label_id`` is the
full 34-class id that ``*_gtFine_labelIds.png`` holds and that ``*_gtFine_instanceIds.png``
encodes (``label_id * 1000 + k`` for the k-th instance of a thing class, ``label_id`` for stuff).
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np


class CityscapesClass(NamedTuple):
    name: str
    train_id: int
    label_id: int
    has_instances: bool


#: The 19 evaluation classes, in train-id order.
CITYSCAPES_CLASSES: Tuple[CityscapesClass, ...] = (
    CityscapesClass('road', 0, 7, False),
    CityscapesClass('sidewalk', 1, 8, False),
    CityscapesClass('building', 2, 11, False),
    CityscapesClass('wall', 3, 12, False),
    CityscapesClass('fence', 4, 13, False),
    CityscapesClass('pole', 5, 17, False),
    CityscapesClass('traffic light', 6, 19, False),
    CityscapesClass('traffic sign', 7, 20, False),
    CityscapesClass('vegetation', 8, 21, False),
    CityscapesClass('terrain', 9, 22, False),
    CityscapesClass('sky', 10, 23, False),
    CityscapesClass('person', 11, 24, True),
    CityscapesClass('rider', 12, 25, True),
    CityscapesClass('car', 13, 26, True),
    CityscapesClass('truck', 14, 27, True),
    CityscapesClass('bus', 15, 28, True),
    CityscapesClass('train', 16, 31, True),
    CityscapesClass('motorcycle', 17, 32, True),
    CityscapesClass('bicycle', 18, 33, True),
)

#: The train id of pixels that no metric or loss counts.
IGNORE_INDEX = 255
#: ``label_id`` of Cityscapes' "unlabeled" void class.
VOID_LABEL_ID = 0
#: trainId -> labelId for the 19 classes.
TRAIN_ID_TO_LABEL_ID = {c.train_id: c.label_id for c in CITYSCAPES_CLASSES}
#: trainIds of the 8 thing classes (those with instance annotations).
THING_TRAIN_IDS = tuple(c.train_id for c in CITYSCAPES_CLASSES if c.has_instances)

#: Cityscapes' void labelIds (unlabeled, ego vehicle, rectification border, out of roi,
#: static, dynamic, ground).
CITYSCAPES_VOID_LABEL_IDS = (0, 1, 2, 3, 4, 5, 6)
#: labelIds of the Cityscapes thing classes (their pixels below 1000 are crowds).
CITYSCAPES_THING_LABEL_IDS = tuple(c.label_id for c in CITYSCAPES_CLASSES if c.has_instances)
#: Raw ids at or above this value are individual thing instances.
INSTANCE_ID_FACTOR = 1000


def decode_cityscapes_instance_ids(raw: np.ndarray,
                                   seg_map: Optional[np.ndarray] = None,
                                   ignore_index: int = 255,
                                   void_label_ids: Sequence[int] = CITYSCAPES_VOID_LABEL_IDS,
                                   crowd_as_ignore: bool = False,
                                   crowd_label_ids: Sequence[int] = CITYSCAPES_THING_LABEL_IDS
                                   ) -> np.ndarray:
    """Instance map (see :mod:`mmaffseg.structures.instance_map`) from a raw ``instanceIds`` array.

    Args:
        raw (np.ndarray): Decoded ``*_gtFine_instanceIds.png``, shape (H, W), integer.
        seg_map (np.ndarray, optional): Semantic map of the same image (e.g. trainIds); its
            ``ignore_index`` pixels become void too.
        ignore_index (int): Void value, in ``seg_map`` and in the output. Defaults to 255.
        void_label_ids (Sequence[int]): Raw labelIds that are void. Defaults to Cityscapes'.
        crowd_as_ignore (bool): Mark crowd pixels (raw labelId in ``crowd_label_ids``, below
            1000) as void instead of 0. Defaults to False.
        crowd_label_ids (Sequence[int]): labelIds of the thing classes, whose pixels below 1000
            are crowds. Only used with ``crowd_as_ignore``. Defaults to Cityscapes'.

    Returns:
        np.ndarray: (H, W) int32 instance map.
    """
    raw = np.asarray(raw).astype(np.int64)
    thing = raw >= INSTANCE_ID_FACTOR
    out = np.zeros(raw.shape, np.int32)
    ids, inverse = np.unique(raw[thing], return_inverse=True)
    numbers = np.arange(1, len(ids) + 1)
    numbers[numbers >= ignore_index] += 1  # never hand out the void value
    out[thing] = numbers[inverse.reshape(-1)]
    void = np.isin(raw, np.asarray(void_label_ids, np.int64)) & ~thing
    if crowd_as_ignore:
        void |= np.isin(raw, np.asarray(crowd_label_ids, np.int64)) & ~thing
    if seg_map is not None:
        void |= seg_map == ignore_index
    out[void] = ignore_index
    return out
