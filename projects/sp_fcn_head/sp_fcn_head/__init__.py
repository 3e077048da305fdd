# Copyright (c) mmaffseg contributors. All rights reserved.
from .sp_fcn_head import SPFCNHead

__all__ = ['SPFCNHead']
