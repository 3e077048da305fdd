# Copyright (c) mmaffseg contributors. All rights reserved.
from .cityscapes_labels import CITYSCAPES_CLASSES, IGNORE_INDEX, THING_TRAIN_IDS
from .instance_map import decode_cityscapes_instance_ids, segment_labels
from .instance_map import instance_classes, stack_instance_maps  # noqa: F401
from .load_annotations import LoadCheckedAnnotations
from .street_scene_generator import Scene, StreetSceneGenerator
from .synthetic_cityscapes import SyntheticCityscapesDataset, generate_synthetic_cityscapes
from .transforms import LoadInstanceMap, PackSegInstanceInputs
from .transforms import RandomCropWithOffset  # noqa: F401
from .image_level_labels import (LoadImageLevelLabels, class_labels_from_seg_map,  # noqa: F401
                                 read_class_label_file)
from .synthetic_wsss import SyntheticCityscapesWSSSDataset, wsss_label_map  # noqa: F401

__all__ = [
    'CITYSCAPES_CLASSES', 'IGNORE_INDEX', 'THING_TRAIN_IDS', 'LoadCheckedAnnotations', 'Scene',
    'StreetSceneGenerator', 'SyntheticCityscapesDataset', 'generate_synthetic_cityscapes',
    'decode_cityscapes_instance_ids', 'segment_labels', 'LoadInstanceMap', 'PackSegInstanceInputs'
]
