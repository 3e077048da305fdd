# Copyright (c) mmaffseg contributors. All rights reserved.
from .cityscapes_labels import (
    CITYSCAPES_CLASSES,
    IGNORE_INDEX,
    THING_TRAIN_IDS,
    decode_cityscapes_instance_ids,
)
from .color_jitter import ColorJitter
from .image_level_labels import (
    LoadImageLevelLabels,
    class_labels_from_seg_map,
    read_class_label_file,
)
from .load_annotations import LoadCheckedAnnotations, LoadCheckedImageFromFile
from .random_canvas_crop import RandomCanvasCrop, canvas_crop_window
from .street_scene_generator import Scene, StreetSceneGenerator
from .synthetic_cityscapes import SyntheticCityscapesDataset, generate_synthetic_cityscapes
from .synthetic_wsss import SyntheticCityscapesWSSSDataset, wsss_label_map
from .transforms import LoadInstanceMap, PackSegInstanceInputs, RandomCropWithOffset

__all__ = [
    'CITYSCAPES_CLASSES',
    'ColorJitter',
    'IGNORE_INDEX',
    'LoadCheckedAnnotations',
    'LoadCheckedImageFromFile',
    'LoadImageLevelLabels',
    'LoadInstanceMap',
    'PackSegInstanceInputs',
    'RandomCanvasCrop',
    'RandomCropWithOffset',
    'Scene',
    'StreetSceneGenerator',
    'SyntheticCityscapesDataset',
    'SyntheticCityscapesWSSSDataset',
    'THING_TRAIN_IDS',
    'canvas_crop_window',
    'class_labels_from_seg_map',
    'decode_cityscapes_instance_ids',
    'generate_synthetic_cityscapes',
    'read_class_label_file',
    'wsss_label_map',
]
