# Copyright (c) mmaffseg contributors. All rights reserved.
from .aggregation_module import AggregationModule
from .atrous_fc import AtrousFC
from .hanet import HANet
from .height_positional_encoding import HeightPositionalEncoding, sinusoid_table
from .mixed_pooling import MPM
from .sssr_upsample import SSSRUpsample
from .strip_pooling import SPM, DualStripPooling
from .upsample_stage import UpsampleStage, build_learned_upsample

__all__ = [
    'AggregationModule',
    'AtrousFC',
    'DualStripPooling',
    'HANet',
    'HeightPositionalEncoding',
    'MPM',
    'SPM',
    'SSSRUpsample',
    'UpsampleStage',
    'build_learned_upsample',
    'sinusoid_table',
]
