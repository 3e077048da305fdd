# Copyright (c) mmaffseg contributors. All rights reserved.
from .amp_optim_wrapper import AnyDeviceAmpOptimWrapper  # noqa: I001
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .channels_last_hook import ChannelsLastHook, to_channels_last
from .checkpoint_check_hook import CheckpointCheckHook
from .finite_check_hook import FiniteCheckHook
from .labelled_data_check_hook import LabelledDataCheckHook, check_labelled_pixels
from .loss_weight_ramp_hook import LossWeightRampHook, ramp_value
from .num_classes_check_hook import NumClassesCheckHook, check_num_classes
from .rng_state_hook import RNGStateHook

__all__ = [
    'LossWeightRampHook', 'ramp_value', 'AtomicCheckpointHook', 'CheckpointCheckHook',
    'RNGStateHook', 'NumClassesCheckHook', 'check_num_classes', 'FiniteCheckHook',
    'LabelledDataCheckHook', 'check_labelled_pixels', 'AnyDeviceAmpOptimWrapper',
    'ChannelsLastHook', 'to_channels_last'
]
