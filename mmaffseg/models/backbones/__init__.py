# Copyright (c) mmaffseg contributors. All rights reserved.
from .hypercolumn import HypercolumnBackbone
from .resnet38 import ResNet38
from .resnet_sp import ResNetSP
from .vgg_atrous import VGGAtrous

__all__ = ['HypercolumnBackbone', 'ResNet38', 'ResNetSP', 'VGGAtrous']
