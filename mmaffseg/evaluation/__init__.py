# Copyright (c) mmaffseg contributors. All rights reserved.
from .pair_ranking import (PairRankingMetric, pair_ranking_accuracy,  # noqa: F401
                           ranking_accuracy)
from .instance_ap import (InstanceAPMetric, average_precision, mask_ious,  # noqa: F401
                          match_detections)
