# Copyright (c) mmaffseg contributors. All rights reserved.
from .affinity_head import AffinityHead
from .aspp_v2_head import ASPPV2Head
from .cam_head import CAMHead
from .cp_head import CPHead
from .embedding_head import EmbeddingHead
from .hanet_aspp_head import HANetASPPHead
from .hypercolumn_head import HypercolumnHead
from .largefov_head import LargeFOVHead
from .psa_seg_head import PSASegHead
from .seediness_head import SeedinessHead
from .sp_head import SPHead
from .sr_decoder import SRDecoder

__all__ = [
    'ASPPV2Head',
    'AffinityHead',
    'CAMHead',
    'CPHead',
    'EmbeddingHead',
    'HANetASPPHead',
    'HypercolumnHead',
    'LargeFOVHead',
    'PSASegHead',
    'SPHead',
    'SRDecoder',
    'SeedinessHead',
]
