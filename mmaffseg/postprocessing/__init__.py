# Copyright (c) mmaffseg contributors. All rights reserved.
from .dense_crf import DenseCRF, unary_from_probs
from .mask_nms import mask_nms
from .seed_selection import select_seeds

__all__ = ['DenseCRF', 'mask_nms', 'select_seeds', 'unary_from_probs']
