# Copyright (c) mmaffseg contributors. All rights reserved.
from .affinity_labels import affinity_label_from_cams, affinity_label_from_crf
from .cam import add_background, multi_scale_cam, stack_to_label
from .dense_random_walk import dense_affinity_matrix, dense_random_walk, dense_transition
from .param_selection import PSAParamSelectionLoop, select_best
from .pseudo_label_loop import PseudoLabelLoop, label_relpath, shard_indices
from .random_walk import random_walk, random_walk_cams, transition_matrix

__all__ = [
    'PSAParamSelectionLoop',
    'PseudoLabelLoop',
    'add_background',
    'affinity_label_from_cams',
    'affinity_label_from_crf',
    'dense_affinity_matrix',
    'dense_random_walk',
    'dense_transition',
    'label_relpath',
    'multi_scale_cam',
    'random_walk',
    'random_walk_cams',
    'select_best',
    'shard_indices',
    'stack_to_label',
    'transition_matrix',
]
