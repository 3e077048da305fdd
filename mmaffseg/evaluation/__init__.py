# Copyright (c) mmaffseg contributors. All rights reserved.
from .pair_ranking import (PairRankingMetric, pair_ranking_accuracy,  # noqa: F401
                           ranking_accuracy)
from .instance_ap import (InstanceAPMetric, average_precision, mask_ious,  # noqa: F401
                          match_detections)
from .pseudo_label_metric import (PseudoLabelMetric, format_table1, label_areas,  # noqa: F401
                                  TABLE1_ROWS)
