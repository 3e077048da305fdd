# Copyright (c) mmaffseg contributors. All rights reserved.
from .dense_crf import DenseCRF, unary_from_probs  # noqa: F401
from .seed_selection import select_seeds  # noqa: F401
