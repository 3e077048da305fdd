# Copyright (c) mmaffseg contributors. All rights reserved.
"""A weakly supervised view of the synthetic street scenes: background + the 8 thing classes.

For the PSA / AffinityNet pipeline (Ahn & Kwak, "Learning Pixel-level Semantic Affinity with
Image-level Supervision for Weakly Supervised Semantic Segmentation", CVPR 2018) a dataset needs
PASCAL VOC's form: one background class plus object classes that image-level labels name. The
synthetic Cityscapes scenes (:class:`~mmaffseg.datasets.SyntheticCityscapesDataset`) are mapped
to that form:

=========================================  ===============================================
Cityscapes trainId                         WSSS label
=========================================  ===============================================
0-10 (road ... sky, the "stuff" classes)   0 background
11 person, 12 rider, 13 car, 14 truck,     1 person, 2 rider, 3 car, 4 truck, 5 bus,
15 bus, 16 train, 17 motorcycle,           6 train, 7 motorcycle, 8 bicycle
18 bicycle
255 void                                   255 ignore
=========================================  ===============================================

so the CAM classifier has 8 image-level classes (``num_classes=8`` of
:class:`~mmaffseg.datasets.LoadImageLevelLabels`) and the segmentation 9. The mapping is mmseg's
``label_map`` mechanism, applied by ``LoadAnnotations`` when it reads a ground-truth map. Pseudo
labels written by the PSA runner are already in WSSS labels: read them with
``map_labels=False`` (second-stage training on pseudo labels).
"""
from typing import Dict, Optional, Sequence

from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from .cityscapes_labels import CITYSCAPES_CLASSES, THING_TRAIN_IDS
from .synthetic_cityscapes import SyntheticCityscapesDataset

_PALETTE = dict(zip(CityscapesDataset.METAINFO['classes'], CityscapesDataset.METAINFO['palette']))
THING_CLASSES = tuple(c.name for c in CITYSCAPES_CLASSES if c.has_instances)


def wsss_label_map() -> Dict[int, int]:
    """Cityscapes trainId -> WSSS label (stuff -> 0, k-th thing class -> k + 1)."""
    things = {train_id: k + 1 for k, train_id in enumerate(THING_TRAIN_IDS)}
    return {c.train_id: things.get(c.train_id, 0) for c in CITYSCAPES_CLASSES}


@DATASETS.register_module()
class SyntheticCityscapesWSSSDataset(SyntheticCityscapesDataset):
    """The synthetic street scenes with labels 0 background, 1..8 the thing classes.

    Args:
        map_labels (bool): Map the Cityscapes trainIds of the ground truth to WSSS labels (see
            the module docstring). False when the label maps already hold WSSS labels, e.g.
            pseudo labels from ``tools/make_pseudo_labels.py``. Default: True.
        **kwargs: :class:`~mmaffseg.datasets.SyntheticCityscapesDataset` arguments
            (``data_root``, ``data_prefix``, ``pipeline``, ``num_train``...).
    """

    METAINFO = dict(
        classes=('background', ) + THING_CLASSES,
        palette=[[0, 0, 0]] + [_PALETTE[name] for name in THING_CLASSES])

    def __init__(self, map_labels: bool = True, **kwargs) -> None:
        self.map_labels = map_labels  # read by get_label_map during BaseSegDataset.__init__
        super().__init__(**kwargs)

    def get_label_map(self, new_classes: Optional[Sequence] = None) -> Optional[Dict[int, int]]:
        """The trainId -> WSSS label map (an instance method: it depends on ``map_labels``)."""
        return wsss_label_map() if self.map_labels else None
