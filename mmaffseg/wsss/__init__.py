# Copyright (c) mmaffseg contributors. All rights reserved.
from .affinity_labels import affinity_label_from_cams, affinity_label_from_crf
from .cam import add_background, multi_scale_cam, stack_to_label
from .label_store import PseudoLabelStore, label_relpath
from .param_selection import PSAParamSelectionLoop, select_best
from .pseudo_label_loop import PseudoLabelLoop, shard_indices
from .pseudo_label_stages import stage_labels
from .random_walk import random_walk, random_walk_cams

__all__ = [
    'PSAParamSelectionLoop',
    'PseudoLabelLoop',
    'PseudoLabelStore',
    'add_background',
    'affinity_label_from_cams',
    'affinity_label_from_crf',
    'label_relpath',
    'multi_scale_cam',
    'random_walk',
    'random_walk_cams',
    'select_best',
    'shard_indices',
    'stack_to_label',
    'stage_labels',
]
