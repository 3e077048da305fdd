# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert checkpoints of the official PSA code (jiwoon-ahn/psa) to mmaffseg keys.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

Handles the ResNet-38 backbone weights (the ImageNet ones as produced by the reference's
``convert_mxnet_to_torch``) and the trained ``resnet38_cls`` (CAM network) and ``resnet38_aff``
(AffinityNet) checkpoints:

- ``conv1a`` -> ``backbone.stem``; ``b2``, ``b2_1``, ... ``b7`` -> ``backbone.layer1.0``,
  ``layer1.1``, ... ``layer6.0``; inside a block ``bn_branch2a/conv_branch2a/bn_branch2b1/
  conv_branch2b1/bn_branch2b2/conv_branch2b2/conv_branch1`` -> ``norm1/conv1/norm2/conv2/norm3/
  conv3/downsample``; ``bn7`` -> ``backbone.final_norm``;
- ``fc8`` -> ``decode_head.conv_seg`` (:class:`~mmaffseg.models.decode_heads.CAMHead` with
  ``num_convs=0, channels=4096``);
- ``f8_3/f8_4/f8_5`` -> ``decode_head.lateral_convs.0/1/2.conv`` and ``f9`` ->
  ``decode_head.fuse_conv.conv`` (:class:`~mmaffseg.models.decode_heads.AffinityHead`).

For a backbone-only file, initialise the backbone with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.
"""
from collections import OrderedDict
from typing import Dict

from torch import Tensor

from .checkpoint_conversion import KeyRules, map_state_dict_keys

_BLOCK_PARTS = dict(bn_branch2a='norm1', conv_branch2a='conv1', bn_branch2b1='norm2',
                    conv_branch2b1='conv2', bn_branch2b2='norm3', conv_branch2b2='conv3',
                    conv_branch1='downsample')

PSA_RULES: KeyRules = [
    (r'conv1a\.', 'backbone.stem.'),
    (r'bn7\.', 'backbone.final_norm.'),
    (r'fc8\.', 'decode_head.conv_seg.'),
    (r'f9\.', 'decode_head.fuse_conv.conv.'),
]
PSA_RULES += [(rf'f8_{level + 3}\.', f'decode_head.lateral_convs.{level}.conv.')
              for level in range(3)]
# b<s> is block 0 of layer s-1, b<s>_<j> block j
PSA_RULES += [(rf'b{stage}\.{old}\.', f'backbone.layer{stage - 1}.0.{new}.')
              for stage in range(2, 8) for old, new in _BLOCK_PARTS.items()]
PSA_RULES += [(rf'b{stage}_(\d)\.{old}\.', rf'backbone.layer{stage - 1}.\1.{new}.')
              for stage in range(2, 8) for old, new in _BLOCK_PARTS.items()]


def convert_official_psa(state_dict: Dict[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Map official PSA ResNet-38 weights (backbone, CAM or affinity net) to mmaffseg keys.

    Args:
        state_dict (dict[str, Tensor]): Official weights (a ``module.`` prefix is dropped).

    Returns:
        OrderedDict[str, Tensor]: mmaffseg weights.
    """
    return map_state_dict_keys(state_dict, PSA_RULES, 'PSA ResNet-38 model')
