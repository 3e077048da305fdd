# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert checkpoints and constructor arguments of the official HANet code to mmaffseg.

Reference code: shachoi/HANet (``network/HANet.py:HANet_Conv``,
``network/deepv3.py:DeepV3PlusHANet``), for Choi, Kim & Choo, "Cars Can't Fly up in the Sky:
Improving Urban-Scene Segmentation via Height-driven Attention Networks", CVPR 2020.

Two kinds of state dicts are recognised:

- a bare ``HANet_Conv`` (keys ``attention_first.*``...) -> :class:`~mmaffseg.models.layers.HANet`;
- a whole ``DeepV3PlusHANet`` with the ResNet-101 deep stem (keys ``layer0.*``, ``aspp.*``,
  ``hanet0.*``...) -> :class:`~mmaffseg.models.segmentors.HANetEncoderDecoder` with a
  ``ResNetV1c`` backbone (``stem_channels=128``), :class:`HANetASPPHead` and an ``FCNHead``
  auxiliary head (``channels=512``) on layer3.

A conv bias followed by BatchNorm (HANet's second conv, the auxiliary head's 3x3 conv) is
folded into the BN's ``running_mean``: our convs before a norm have no bias, and
``BN(conv(x) + b)`` equals ``BN'(conv(x))`` with ``running_mean' = running_mean - b``.
"""
import re
from collections import OrderedDict
from typing import Dict

from torch import Tensor

from .checkpoint_conversion import KeyRules, conv_norm_rules, map_state_dict_keys, prefixed_rules

# whole model without the HANet modules: official key start -> ours
_MODEL_RULES: KeyRules = [
    (r'layer0\.', 'backbone.stem.'),
    (r'layer([1-4])\.', r'backbone.layer\1.'),
    *conv_norm_rules('aspp.img_conv', 'decode_head.image_pool.1'),
    (r'aspp\.features\.(\d+)\.0\.', r'decode_head.aspp_modules.\1.conv.'),
    (r'aspp\.features\.(\d+)\.1\.', r'decode_head.aspp_modules.\1.bn.'),
    *conv_norm_rules('bot_aspp', 'decode_head.bottleneck'),
    *conv_norm_rules('bot_fine', 'decode_head.c1_bottleneck'),
    *conv_norm_rules('final1', 'decode_head.decoder.0'),
    (r'final1\.3\.', 'decode_head.decoder.1.conv.'),
    (r'final1\.4\.', 'decode_head.decoder.1.bn.'),
    (r'final2\.0\.', 'decode_head.conv_seg.'),
    *conv_norm_rules('dsn', 'auxiliary_head.convs.0'),
    (r'dsn\.4\.', 'auxiliary_head.conv_seg.'),
]
# official hanet{i} -> HANetASPPHead placement
_MODEL_HANETS = {
    'hanet0.': 'decode_head.hanet_layer4.',
    'hanet1.': 'decode_head.hanet_aspp.',
    'hanet2.': 'decode_head.hanet_bottleneck.',
    'hanet3.': 'decode_head.hanet_decoder.',
}


def _hanet_rules(three_convs: bool) -> KeyRules:
    """Key rules of one HANet_Conv (two or three convs)."""
    rules = [
        *conv_norm_rules('attention_first', 'conv_reduce'),
        (r'pos_emb1d_(1st|2nd)\.pos_layer\.weight', 'pos_encoding.table'),
    ]
    if three_convs:
        return rules + [*conv_norm_rules('attention_second', 'conv_hidden'),
                        (r'attention_third\.0\.', 'conv_attention.')]
    return rules + [(r'attention_second\.0\.', 'conv_attention.')]


def _fold_bias(state_dict: Dict[str, Tensor], conv: str) -> None:
    """Move the bias of ``{conv}.0`` into the running mean of the BN ``{conv}.1`` after it."""
    bias = state_dict.pop(f'{conv}.0.bias', None)
    if bias is not None:
        state_dict[f'{conv}.1.running_mean'] = state_dict[f'{conv}.1.running_mean'] - bias


def convert_official_hanet(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Map an official HANet state dict (module or whole DeepLabV3+ model) to mmaffseg keys.

    Args:
        state_dict (dict[str, Tensor]): Official weights; a ``module.`` prefix (DataParallel)
            is stripped.

    Returns:
        OrderedDict[str, Tensor]: mmaffseg weights, loadable with ``strict=True`` except for
        ``num_batches_tracked`` entries missing from the source.
    """
    state_dict = {(k[len('module.'):] if k.startswith('module.') else k): v
                  for k, v in state_dict.items()}
    whole_model = any(k.startswith(('layer0.', 'aspp.', 'hanet0.')) for k in state_dict)
    prefixes = _MODEL_HANETS if whole_model else {'': ''}
    rules = list(_MODEL_RULES) if whole_model else []
    for src, dst in prefixes.items():
        three_convs = any(k.startswith(src + 'attention_third.') for k in state_dict)
        if three_convs:
            _fold_bias(state_dict, src + 'attention_second')
        rules += prefixed_rules(re.escape(src), dst, _hanet_rules(three_convs))
    if whole_model:
        _fold_bias(state_dict, 'dsn')
    return map_state_dict_keys(state_dict, rules, 'HANet' if not whole_model else
                               'DeepV3PlusHANet (ResNet, deep stem)')
