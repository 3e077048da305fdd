# Copyright (c) mmaffseg contributors. All rights reserved.
"""Tests build their random batches with the package's own helper."""
from mmaffseg.utils.random_batch import random_seg_batch  # noqa: F401
