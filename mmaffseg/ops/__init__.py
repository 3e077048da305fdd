# Copyright (c) mmaffseg contributors. All rights reserved.
"""Pure tensor functions shared by models, metrics and method code, and PSA's settings and
stage tables that every layer reads (a leaf: imports nothing else of mmaffseg)."""
from .affinity_pairs import affinity_pair_labels, downsample_label, pairwise_affinity
from .embedding_similarity import grow_masks, log_dissimilarity, log_similarity, similarity
from .neighbour_offsets import from_window, neighbour_offsets, neighbour_pairs, pair_indices
from .pairwise import (
    flatten_spatial,
    pairwise_cosine_similarity,
    pairwise_mask_iou,
    pairwise_squared_distances,
)
from .precision import autocast_disabled, float32_math, upcast
from .psa_defaults import PSA_CRF, PSA_DEFAULTS, PSADefaults
from .psa_stages import PSA_STAGES, PSAStage
from .row_positions import (
    NUM_ROW_BINS,
    PAD_ROW_BIN,
    batch_row_positions,
    pil_nearest_rows,
    row_positions_from_meta,
)

__all__ = [
    'NUM_ROW_BINS',
    'PAD_ROW_BIN',
    'PSA_CRF',
    'PSA_DEFAULTS',
    'PSA_STAGES',
    'PSADefaults',
    'PSAStage',
    'affinity_pair_labels',
    'autocast_disabled',
    'batch_row_positions',
    'flatten_spatial',
    'downsample_label',
    'float32_math',
    'from_window',
    'grow_masks',
    'log_dissimilarity',
    'log_similarity',
    'neighbour_offsets',
    'neighbour_pairs',
    'pair_indices',
    'pairwise_affinity',
    'pairwise_cosine_similarity',
    'pairwise_mask_iou',
    'pairwise_squared_distances',
    'pil_nearest_rows',
    'row_positions_from_meta',
    'similarity',
    'upcast',
]
