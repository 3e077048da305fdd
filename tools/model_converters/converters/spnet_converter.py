# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert checkpoints and constructor arguments of the official SPNet code to mmaffseg.

Reference code: houqb/SPNet (= Andrew-Qibin/SPNet): ``models/resnet.py:SPBlock`` (the paper's
SPM), ``models/customize.py:StripPooling`` (the paper's MPM), ``models/spnet.py:SPHead`` and
``SPNet``, for Hou, Zhang, Cheng & Feng, "Strip Pooling: Rethinking Spatial Pooling for Scene
Parsing", CVPR 2020.

Module correspondence (official -> mmaffseg):

- ``SPBlock`` -> :class:`~mmaffseg.models.layers.SPM` (its ``gate`` is the SPBlock output);
- ``StripPooling`` -> :class:`~mmaffseg.models.layers.MPM`;
- ``SPHead`` -> :class:`~mmaffseg.models.decode_heads.SPHead` (``score_layer.4`` is
  ``conv_seg``);
- ``SPNet`` -> ``EncoderDecoder`` with :class:`~mmaffseg.models.backbones.ResNetSP`
  (``stem_channels=128``; ``pretrained.conv1`` + ``pretrained.bn1`` are ``backbone.stem``),
  ``SPHead`` and an ``FCNHead`` auxiliary head (``auxlayer``).
"""
from collections import OrderedDict
from typing import Dict

from torch import Tensor

from .checkpoint_conversion import KeyRules, conv_norm_rules, map_state_dict_keys, prefixed_rules

SPM_RULES: KeyRules = [
    (r'conv1\.', 'strip_pool.conv_h.conv.'),
    (r'bn1\.', 'strip_pool.conv_h.bn.'),
    (r'conv2\.', 'strip_pool.conv_w.conv.'),
    (r'bn2\.', 'strip_pool.conv_w.bn.'),
    (r'conv3\.', 'conv_gate.conv.'),
]
_MPM_NAMES = dict(conv1_1='reduce_short', conv2_0='short_conv', conv2_1='pool_convs.0',
                  conv2_2='pool_convs.1', conv2_5='short_fuse', conv1_2='reduce_long',
                  conv2_3='strip_pool.conv_w', conv2_4='strip_pool.conv_h', conv2_6='long_fuse',
                  conv3='project')
MPM_RULES: KeyRules = [rule for src, dst in _MPM_NAMES.items()
                       for rule in conv_norm_rules(src, dst)]
SPHEAD_RULES: KeyRules = (
    conv_norm_rules('trans_layer', 'reduce')
    + prefixed_rules(r'strip_pool1\.', 'mpms.0.', MPM_RULES)
    + prefixed_rules(r'strip_pool2\.', 'mpms.1.', MPM_RULES)
    + conv_norm_rules('score_layer', 'bottleneck') + [(r'score_layer\.4\.', 'conv_seg.')])
SPNET_RULES: KeyRules = (
    [(rf'pretrained\.conv1\.{i}\.', f'backbone.stem.{i}.') for i in (0, 1, 3, 4, 6)]
    + [(r'pretrained\.bn1\.', 'backbone.stem.7.')]
    + prefixed_rules(r'pretrained\.(?P<block>layer\d\.\d+)\.spm\.', r'backbone.\g<block>.spm.',
                     SPM_RULES)
    + [(r'pretrained\.(layer\d\.)', r'backbone.\1')]
    + prefixed_rules(r'head\.', 'decode_head.', SPHEAD_RULES)
    + conv_norm_rules('auxlayer.conv5', 'auxiliary_head.convs.0')
    + [(r'auxlayer\.conv5\.4\.', 'auxiliary_head.conv_seg.')])

RULES: Dict[str, KeyRules] = dict(SPBlock=SPM_RULES, StripPooling=MPM_RULES,
                                  SPHead=SPHEAD_RULES, SPNet=SPNET_RULES)


def guess_spnet_source(state_dict: Dict[str, Tensor]) -> str:
    """Which official class a state dict belongs to (``SPNet``, ``SPHead``...)."""
    keys = [k[len('module.'):] if k.startswith('module.') else k for k in state_dict]
    if any(k.startswith('pretrained.') for k in keys):
        return 'SPNet'
    if any(k.startswith('trans_layer.') for k in keys):
        return 'SPHead'
    if any(k.startswith('conv1_1.') for k in keys):
        return 'StripPooling'
    if 'conv3.bias' in keys:
        return 'SPBlock'
    raise KeyError(f'not an official SPNet, SPHead, StripPooling or SPBlock state dict '
                   f'(first keys: {keys[:5]})')


def convert_official_spnet(state_dict: Dict[str, Tensor],
                           source: str = 'auto') -> 'OrderedDict[str, Tensor]':
    """Map official SPNet weights to mmaffseg keys.

    Args:
        state_dict (dict[str, Tensor]): Official weights.
        source (str): Official class: ``'SPNet'`` (whole model), ``'SPHead'``,
            ``'StripPooling'``, ``'SPBlock'``, or ``'auto'`` to guess from the keys.

    Returns:
        OrderedDict[str, Tensor]: Weights for the mmaffseg counterpart (see the module doc).
    """
    if source == 'auto':
        source = guess_spnet_source(state_dict)
    if source not in RULES:
        raise ValueError(f'source must be one of {sorted(RULES)} or "auto", got {source!r}')
    return map_state_dict_keys(state_dict, RULES[source], f'SPNet {source}')
