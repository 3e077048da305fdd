# Copyright (c) mmaffseg contributors. All rights reserved.
"""The logic behind ``tools/train.py`` and ``tools/test.py`` (the tools only parse arguments),
and :func:`show_result_pyplot` for every mmaffseg model's inference result."""

from .inference import show_result_pyplot
from .pseudo_labels import prepare_pseudo_label_cfg
from .runner_setup import (
    add_launcher_args,
    build_runner,
    check_data_roots,
    load_config,
    parse_launcher_args,
    prepare_test_cfg,
    prepare_train_cfg,
    registry_error_hints,
)

__all__ = [
    'add_launcher_args',
    'build_runner',
    'check_data_roots',
    'load_config',
    'parse_launcher_args',
    'prepare_pseudo_label_cfg',
    'prepare_test_cfg',
    'prepare_train_cfg',
    'registry_error_hints',
    'show_result_pyplot',
]
