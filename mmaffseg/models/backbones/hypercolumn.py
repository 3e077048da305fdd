# Copyright (c) mmaffseg contributors. All rights reserved.
"""A backbone wrapper exposing the levels a hypercolumn taps: the image and the stem.

Hypercolumns (Hariharan et al., "Hypercolumns for Object Segmentation and Fine-grained
Localization", CVPR 2015) as used by Aksoy, Oh, Paris, Pollefeys and Matusik, "Semantic Soft
Segmentation", ACM Transactions on Graphics (Proc. SIGGRAPH), 2018: the per-pixel feature reads
the input image, the stem ("pool1") and several later stages of a DeepLab ResNet-101.

mmseg backbones return only their stages. :class:`HypercolumnBackbone` builds any of them from
its config and returns ``[image, stem, *stages]``; the stem output is caught with a forward hook
on a named submodule (``maxpool`` in every mmseg ResNet variant), registered only for the
duration of one forward pass.
"""
from typing import List, Optional

from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptMultiConfig
from torch import Tensor


@MODELS.register_module()
class HypercolumnBackbone(BaseModule):
    """Any mmseg backbone, returning the input and its stem output before the stages.

    Args:
        backbone (dict): Config of the wrapped backbone (e.g. ``ResNetV1c``); its
            ``out_indices`` choose the stages that follow.
        stem_module (str): Name of the submodule whose output is the stem tap
            (``backbone.get_submodule(stem_module)``). Defaults to ``'maxpool'`` (the paper's
            "pool1", stride 4).
        with_input (bool): Put the input image first in the outputs. Defaults to True.
        pretrained (str, optional): Checkpoint loaded into the wrapped backbone (becomes its
            ``init_cfg``; mmseg's ``EncoderDecoder`` sets it from its own ``pretrained``).
            Defaults to None.
        init_cfg (dict | list[dict], optional): Initialisation of the wrapper itself.
    """

    def __init__(self,
                 backbone: ConfigType,
                 stem_module: str = 'maxpool',
                 with_input: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        backbone = dict(backbone)
        if pretrained is not None:
            if backbone.get('init_cfg') is not None or backbone.get('pretrained') is not None:
                raise ValueError('HypercolumnBackbone: give the pretrained weights either as '
                                 '`pretrained` or in the wrapped backbone config, not both')
            backbone['init_cfg'] = dict(type='Pretrained', checkpoint=pretrained)
        self.backbone = MODELS.build(backbone)
        try:
            self.backbone.get_submodule(stem_module)
        except AttributeError as e:
            raise ValueError(
                f'HypercolumnBackbone: {type(self.backbone).__name__} has no submodule '
                f'{stem_module!r}; set stem_module to one of its module names (e.g. "maxpool", '
                '"stem", "conv1")') from e
        self.stem_module = stem_module
        self.with_input = with_input

    def forward(self, x: Tensor) -> List[Tensor]:
        """Run the backbone once.

        Args:
            x (Tensor): Images, shape (B, 3, H, W).

        Returns:
            list[Tensor]: ``[x (if with_input), stem, *backbone outputs]``.
        """
        caught = []
        stem = self.backbone.get_submodule(self.stem_module)
        handle = stem.register_forward_hook(lambda module, args, out: caught.append(out))
        try:
            outs = list(self.backbone(x))
        finally:
            handle.remove()
        if len(caught) != 1:
            raise RuntimeError(f'HypercolumnBackbone: {self.stem_module!r} ran {len(caught)} '
                               'times in one forward pass; choose a module that runs once')
        return ([x] if self.with_input else []) + [caught[0]] + outs
