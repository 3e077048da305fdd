# Copyright (c) mmaffseg contributors. All rights reserved.
from .loss_weight_ramp_hook import LossWeightRampHook, ramp_value

__all__ = ['LossWeightRampHook', 'ramp_value']
