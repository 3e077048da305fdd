# Copyright (c) mmaffseg contributors. All rights reserved.
"""The 19 Cityscapes evaluation classes and their ids.

Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016.
``train_id`` is what ``*_gtFine_labelTrainIds.png`` holds (255 = ignore); ``label_id`` is the
full 34-class id that ``*_gtFine_labelIds.png`` holds and that ``*_gtFine_instanceIds.png``
encodes (``label_id * 1000 + k`` for the k-th instance of a thing class, ``label_id`` for stuff).
"""
from typing import NamedTuple, Tuple


class CityscapesClass(NamedTuple):
    name: str
    train_id: int
    label_id: int
    has_instances: bool


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

IGNORE_INDEX = 255
#: ``label_id`` of Cityscapes' "unlabeled" void class.
VOID_LABEL_ID = 0
#: trainId -> labelId for the 19 classes.
TRAIN_ID_TO_LABEL_ID = {c.train_id: c.label_id for c in CITYSCAPES_CLASSES}
#: trainIds of the 8 thing classes (those with instance annotations).
THING_TRAIN_IDS = tuple(c.train_id for c in CITYSCAPES_CLASSES if c.has_instances)
