# Copyright (c) mmaffseg contributors. All rights reserved.
from .cityscapes_instance_metric import CityscapesInstanceMetric
from .instance_ap import InstanceAPMetric, average_precision, mask_ious, match_detections
from .pair_ranking import PairRankingMetric, pair_ranking_accuracy, ranking_accuracy
from .pseudo_label_metric import TABLE1_ROWS, PseudoLabelMetric, format_table1, label_areas

__all__ = [
    'CityscapesInstanceMetric',
    'InstanceAPMetric',
    'PairRankingMetric',
    'PseudoLabelMetric',
    'TABLE1_ROWS',
    'average_precision',
    'format_table1',
    'label_areas',
    'mask_ious',
    'match_detections',
    'pair_ranking_accuracy',
    'ranking_accuracy',
]
