# Copyright (c) mmaffseg contributors. All rights reserved.
from .cityscapes_labels import (
    CITYSCAPES_CLASSES,
    IGNORE_INDEX,
    THING_TRAIN_IDS,
    decode_cityscapes_instance_ids,  # noqa: F401
)
from .image_level_labels import (  # noqa: F401
    LoadImageLevelLabels,
    class_labels_from_seg_map,
    read_class_label_file,
)
from .load_annotations import LoadCheckedAnnotations, LoadCheckedImageFromFile
from .street_scene_generator import Scene, StreetSceneGenerator
from .synthetic_cityscapes import SyntheticCityscapesDataset, generate_synthetic_cityscapes
from .synthetic_wsss import SyntheticCityscapesWSSSDataset, wsss_label_map  # noqa: F401
from .transforms import (
    LoadInstanceMap,
    PackSegInstanceInputs,
    RandomCropWithOffset,  # noqa: F401
)

__all__ = [
    'CITYSCAPES_CLASSES',
    'IGNORE_INDEX',
    'THING_TRAIN_IDS',
    'LoadCheckedAnnotations',
    'LoadCheckedImageFromFile',
    'Scene',
    'StreetSceneGenerator',
    'SyntheticCityscapesDataset',
    'generate_synthetic_cityscapes',
    'decode_cityscapes_instance_ids',
    'LoadInstanceMap',
    'PackSegInstanceInputs',
]
from .color_jitter import ColorJitter  # noqa: F401,E402
