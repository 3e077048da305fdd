# Copyright (c) mmaffseg contributors. All rights reserved.
"""Instance embedding's code that is not an ``nn.Module`` (Fathi et al. 2017,
arXiv:1703.10277): seed selection, mask NMS and oracle seeds. Its heads, losses and segmentor
are registered modules and live in :mod:`mmaffseg.models`."""
from .mask_nms import mask_nms
from .oracle_seeds import oracle_seeds
from .seed_selection import select_seeds

__all__ = ['mask_nms', 'oracle_seeds', 'select_seeds']
