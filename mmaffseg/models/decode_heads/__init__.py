# Copyright (c) mmaffseg contributors. All rights reserved.
from .affinity_head import AffinityHead, pairwise_affinity  # noqa: F401
from .aspp_v2_head import ASPPV2Head  # noqa: F401
from .cam_head import CAMHead  # noqa: F401
from .cp_head import CPHead  # noqa: F401
from .embedding_head import EmbeddingHead  # noqa: F401
from .hanet_aspp_head import HANetASPPHead  # noqa: F401
from .hypercolumn_head import HypercolumnHead  # noqa: F401
from .largefov_head import LargeFOVHead  # noqa: F401
from .psa_seg_head import PSASegHead  # noqa: F401
from .seediness_head import SeedinessHead, seed_class_targets  # noqa: F401
from .sp_head import SPHead  # noqa: F401
from .sr_decoder import SRDecoder  # noqa: F401
