# Copyright (c) mmaffseg contributors. All rights reserved.
from .instance_ap import InstanceAPMetric, average_precision, mask_ious, match_detections  # noqa: F401
from .pair_ranking import PairRankingMetric, pair_ranking_accuracy, ranking_accuracy  # noqa: F401
from .pseudo_label_metric import TABLE1_ROWS, PseudoLabelMetric, format_table1, label_areas  # noqa: F401
