# Copyright (c) mmaffseg contributors. All rights reserved.
from .dense_crf import DenseCRF, unary_from_probs

__all__ = ['DenseCRF', 'unary_from_probs']
