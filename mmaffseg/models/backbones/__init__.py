# Copyright (c) mmaffseg contributors. All rights reserved.
from .hypercolumn import HypercolumnBackbone  # noqa: F401
from .resnet38 import ResNet38  # noqa: F401
from .resnet_sp import ResNetSP  # noqa: F401
from .vgg_atrous import VGGAtrous  # noqa: F401
