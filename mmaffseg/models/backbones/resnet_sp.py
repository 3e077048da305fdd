# Copyright (c) mmaffseg contributors. All rights reserved.
"""ResNetV1c with strip pooling modules placed as in the official SPNet.

Paper: Qibin Hou, Li Zhang, Ming-Ming Cheng, Jiashi Feng, "Strip Pooling: Rethinking Spatial
Pooling for Scene Parsing", CVPR 2020.

The official backbone puts an SPM after conv2-bn2-ReLU of the LAST bottleneck of stages 1-3 and
of EVERY bottleneck of stage 4. mmcv's ``plugins`` select whole stages only, so this subclass of
mmseg's ResNetV1c adds the SPM to chosen block indices; ordinary ``plugins`` keep working.

The official dilated ResNet also has these quirks, all expressible with ResNetV1c arguments
(see ``configs/spnet``): deep stem 3x3/2 -> 64, 64, 128 (``stem_channels=128``); stage 3
dilation 2 but its first block dilation 1 (``dilations=(1, 1, 2, 4)``,
``contract_dilation=True``); stage 4 multi-grid dilations 4/8/16 (``multi_grid=(4, 8, 16)``);
output stride 8 (``strides=(1, 2, 1, 1)``).
"""
import copy
from typing import Sequence, Set, Union

import torch.nn as nn
from mmseg.models.backbones import ResNetV1c
from mmseg.registry import MODELS
from mmseg.utils import ConfigType

BlockSelection = Union[str, Sequence[int]]


def _selected_blocks(selection: BlockSelection, num_blocks: int) -> Set[int]:
    """Block indices chosen by ``'all'``, ``'last'``, ``'none'`` or a list of indices."""
    if selection == 'all':
        return set(range(num_blocks))
    if selection == 'last':
        return {num_blocks - 1}
    if selection in ('none', None):
        return set()
    if isinstance(selection, str):
        raise ValueError(f"a block selection is 'all', 'last', 'none' or a list of block "
                         f'indices, got {selection!r}')
    return {i % num_blocks for i in selection}


class _BlockWithExtraPlugins:
    """Stands in for the block class in ResLayer, giving extra plugins to chosen blocks."""

    def __init__(self, block: type, extra_plugins: list, selected: Set[int]) -> None:
        self.block = block
        self.expansion = block.expansion
        self.extra_plugins = extra_plugins
        self.selected = selected
        self.num_built = 0

    def __call__(self, plugins=None, **kwargs) -> nn.Module:
        plugins = list(plugins or [])
        if self.num_built in self.selected:
            plugins += copy.deepcopy(self.extra_plugins)
        self.num_built += 1
        return self.block(plugins=plugins or None, **kwargs)


@MODELS.register_module()
class ResNetSP(ResNetV1c):
    """ResNetV1c with an SPM after conv2 of selected bottlenecks (official SPNet placement).

    Args:
        spm_cfg (dict): Config of the strip pooling module; its ``in_channels`` is set to the
            bottleneck width and its ``norm_cfg`` defaults to the backbone's.
            Defaults to ``dict(type='SPM')``.
        spm_blocks (Sequence): Per stage, which blocks get an SPM: ``'all'``, ``'last'``,
            ``'none'`` or a list of block indices (negative counts from the end). Defaults to
            ``('last', 'last', 'last', 'all')`` (official).
        **kwargs: :class:`mmseg.models.backbones.ResNetV1c` arguments. Only bottleneck depths
            (50, 101, 152) support plugins.
    """

    def __init__(self,
                 spm_cfg: ConfigType = dict(type='SPM'),  # noqa: B006 (mmcv style)
                 spm_blocks: Sequence[BlockSelection] = ('last', 'last', 'last', 'all'),
                 **kwargs) -> None:
        num_stages = kwargs.get('num_stages', 4)
        if len(spm_blocks) != num_stages:
            raise ValueError(f'spm_blocks needs one entry per stage ({num_stages}), got '
                             f'{len(spm_blocks)}: {spm_blocks}')
        if kwargs.get('depth') in (18, 34):
            raise ValueError(f'ResNetSP needs bottleneck blocks (depth 50, 101 or 152), got '
                             f'depth={kwargs["depth"]}: mmseg BasicBlock has no plugins.')
        # read by make_res_layer, which ResNet.__init__ calls once per stage
        spm_cfg = dict(spm_cfg)
        spm_cfg.setdefault('norm_cfg', kwargs.get('norm_cfg', dict(type='BN', requires_grad=True)))
        self._spm_plugin = dict(cfg=spm_cfg, position='after_conv2')
        self._spm_blocks = tuple(spm_blocks)
        self._stages_built = 0
        super().__init__(**kwargs)

    def make_res_layer(self, **kwargs) -> nn.Module:
        """Build one stage, adding the SPM to the blocks ``spm_blocks`` selects."""
        selected = _selected_blocks(self._spm_blocks[self._stages_built], kwargs['num_blocks'])
        self._stages_built += 1
        kwargs['block'] = _BlockWithExtraPlugins(kwargs['block'], [self._spm_plugin], selected)
        return super().make_res_layer(**kwargs)
