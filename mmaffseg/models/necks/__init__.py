# Copyright (c) mmaffseg contributors. All rights reserved.
from .hanet_neck import HANetNeck

__all__ = ['HANetNeck']
