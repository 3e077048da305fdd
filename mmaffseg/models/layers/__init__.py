# Copyright (c) mmaffseg contributors. All rights reserved.
from .aggregation_module import AggregationModule  # noqa: F401
from .atrous_fc import AtrousFC  # noqa: F401
from .embedding_similarity import grow_masks, log_dissimilarity, log_similarity, similarity  # noqa: F401
from .hanet import HANet  # noqa: F401
from .height_positional_encoding import HeightPositionalEncoding, sinusoid_table  # noqa: F401
from .mixed_pooling import MPM  # noqa: F401
from .neighbour_offsets import from_window, neighbour_offsets, neighbour_pairs, pair_indices  # noqa: F401
from .pairwise import (  # noqa: F401
                       flatten_spatial,
                       pairwise_cosine_similarity,
                       pairwise_distances,
                       pairwise_squared_distances,
)
from .row_positions import NUM_ROW_BINS, batch_row_positions, row_positions_from_meta  # noqa: F401
from .strip_pooling import SPM, DualStripPooling  # noqa: F401
from .upsample_stage import UpsampleStage, build_learned_upsample  # noqa: F401
