# Copyright (c) mmaffseg contributors. All rights reserved.
"""Data structures carried by data samples, like :mod:`mmseg.structures` (a leaf)."""
from .instance_map import instance_classes, segment_labels, stack_instance_maps

__all__ = ['instance_classes', 'segment_labels', 'stack_instance_maps']
