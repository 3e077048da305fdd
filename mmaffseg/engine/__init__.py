# Copyright (c) mmaffseg contributors. All rights reserved.
from .loss_weight_ramp_hook import LossWeightRampHook, ramp_value
from .num_classes_check_hook import NumClassesCheckHook, check_num_classes

__all__ = ['LossWeightRampHook', 'ramp_value', 'NumClassesCheckHook', 'check_num_classes']
