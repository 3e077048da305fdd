# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert checkpoints and configs of the official Context Prior code to mmaffseg.

Reference code: yu-changqian/ContextPrior (mmseg 0.x: ``decode_head/cp_head.py:CPHead``,
``loss/affinity_loss.py:AffinityLoss``), for Yu, Wang, Gao, Yu, Shen & Sang, "Context Prior for
Scene Segmentation", CVPR 2020.

The official model is an mmseg 0.x ``EncoderDecoder`` whose ResNetV1c backbone and FCN
auxiliary head have the same keys in mmseg 1.x. Only the aggregation module's separable
branches are renamed: ``t1``/``t2`` (k x 1 then 1 x k) -> ``vertical_first.0``/``.1`` and
``p1``/``p2`` (1 x k then k x 1) -> ``horizontal_first.0``/``.1``. Keys may carry any prefix
(``decode_head.`` in a checkpoint, none for a bare head).
"""
from collections import OrderedDict
from typing import Dict

from torch import Tensor

from .checkpoint_conversion import KeyRules, map_state_dict_keys

CPNET_RULES: KeyRules = [
    (rf'(?P<head>(?:.*\.)?aggregation\.){old}\.', rf'\g<head>{new}.')
    for old, new in (('t1', 'vertical_first.0'), ('t2', 'vertical_first.1'),
                     ('p1', 'horizontal_first.0'), ('p2', 'horizontal_first.1'))
] + [(r'', '')]  # everything else keeps its name


def convert_official_cpnet(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Map official ContextPrior weights (model or bare CPHead) to mmaffseg keys.

    Args:
        state_dict (dict[str, Tensor]): Official weights.

    Returns:
        OrderedDict[str, Tensor]: mmaffseg weights.
    """
    return map_state_dict_keys(state_dict, CPNET_RULES, 'ContextPrior model')
