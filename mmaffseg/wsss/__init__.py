# Copyright (c) mmaffseg contributors. All rights reserved.
from .affinity_labels import (  # noqa: F401
    affinity_label_from_cams,
    affinity_label_from_crf,
    affinity_pair_labels,
    downsample_label,
)
from .cam import add_background, multi_scale_cam, stack_to_label  # noqa: F401
from .dense_random_walk import dense_affinity_matrix, dense_random_walk, dense_transition  # noqa: F401
from .pseudo_label_loop import PseudoLabelLoop, label_relpath, shard_indices  # noqa: F401
from .random_walk import random_walk, random_walk_cams, transition_matrix  # noqa: F401
