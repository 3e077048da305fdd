# Copyright (c) mmaffseg contributors. All rights reserved.
"""The logic behind ``tools/train.py`` and ``tools/test.py`` (the tools only parse arguments)."""
from .pseudo_labels import prepare_pseudo_label_cfg  # noqa: F401
from .runner_setup import (
                           build_runner,
                           check_data_roots,
                           load_config,
                           prepare_test_cfg,
                           prepare_train_cfg,
                           registry_error_hints,
)

__all__ = [
    'build_runner', 'check_data_roots', 'load_config', 'prepare_test_cfg', 'prepare_train_cfg',
    'registry_error_hints'
]
