# Copyright (c) mmaffseg contributors. All rights reserved.
from .aggregation_module import AggregationModule
from .atrous_fc import AtrousFC
from .embedding_similarity import grow_masks, log_dissimilarity, log_similarity, similarity
from .hanet import HANet
from .height_positional_encoding import HeightPositionalEncoding, sinusoid_table
from .mixed_pooling import MPM
from .neighbour_offsets import from_window, neighbour_offsets, neighbour_pairs, pair_indices
from .pairwise import (
    flatten_spatial,
    pairwise_cosine_similarity,
    pairwise_distances,
    pairwise_mask_iou,
    pairwise_squared_distances,
)
from .row_positions import NUM_ROW_BINS, batch_row_positions, row_positions_from_meta
from .strip_pooling import SPM, DualStripPooling
from .upsample_stage import UpsampleStage, build_learned_upsample

__all__ = [
    'AggregationModule',
    'AtrousFC',
    'DualStripPooling',
    'HANet',
    'HeightPositionalEncoding',
    'MPM',
    'NUM_ROW_BINS',
    'SPM',
    'UpsampleStage',
    'batch_row_positions',
    'build_learned_upsample',
    'flatten_spatial',
    'from_window',
    'grow_masks',
    'log_dissimilarity',
    'log_similarity',
    'neighbour_offsets',
    'neighbour_pairs',
    'pair_indices',
    'pairwise_cosine_similarity',
    'pairwise_distances',
    'pairwise_mask_iou',
    'pairwise_squared_distances',
    'row_positions_from_meta',
    'similarity',
    'sinusoid_table',
]
