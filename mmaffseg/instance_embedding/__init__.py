# Copyright (c) mmaffseg contributors. All rights reserved.
"""Instance embedding's code that is not an ``nn.Module``.

Fathi et al., "Semantic Instance Segmentation via Deep Metric Learning", arXiv:1703.10277, 2017:
seed selection, the seediness targets, mask NMS and oracle seeds. The heads, losses and the
segmentor are registered modules and live in :mod:`mmaffseg.models`, which calls these pure
tensor functions; so this package sits below ``models`` and imports only the leaves (see the
README's "Package layout").
"""
from .mask_nms import mask_nms
from .oracle_seeds import oracle_seeds
from .seed_selection import select_seeds
from .targets import grown_mask_ious, seed_class_targets

__all__ = ['grown_mask_ious', 'mask_nms', 'oracle_seeds', 'seed_class_targets', 'select_seeds']
