# Copyright (c) mmaffseg contributors. All rights reserved.
"""Tests build their random batches with the benchmarks' helper."""
from benchmarks.random_batch import random_seg_batch  # noqa: F401
