# Copyright (c) mmaffseg contributors. All rights reserved.
"""The logic behind mmaffseg's tools (``tools/train.py``, ``tools/test.py``, the pseudo-label
tools, the demos): argument and config checks, one-line errors, runners, work-dir records,
CPU distributed launch. The tools only parse arguments and call these; inference for
users' own code is :mod:`mmaffseg.apis` (as in mmseg)."""

from .cfg_options import CfgOptionsAction, check_cfg_options, normalize_cfg_options
from .cpu_distributed import (
    add_launcher_args,
    check_no_sync_bn,
    init_cpu_process_group,
    launch_rank,
    parse_launcher_args,
    setup_cpu_distributed,
)
from .errors import (
    checkpoint_errors_exit,
    config_errors_exit,
    exit_with_error,
    positive_int,
    registry_error_hints,
    report_error,
    training_failure_exit,
)
from .pseudo_labels import prepare_pseudo_label_cfg
from .runner_setup import (
    build_runner,
    check_checkpoint_file,
    check_data_roots,
    check_loaded_checkpoint,
    default_work_dir,
    load_config,
    prepare_test_cfg,
    prepare_train_cfg,
    use_checked_image_loading,
)
from .training_precision import (
    add_precision_args,
    amp_dtype,
    training_precision,
    use_amp,
    use_channels_last,
)
from .work_dir import check_work_dir_record, checkpoint_folder, claim_work_dir

__all__ = [
    'CfgOptionsAction',
    'add_launcher_args',
    'add_precision_args',
    'amp_dtype',
    'build_runner',
    'check_cfg_options',
    'check_checkpoint_file',
    'check_data_roots',
    'check_loaded_checkpoint',
    'check_no_sync_bn',
    'check_work_dir_record',
    'checkpoint_errors_exit',
    'checkpoint_folder',
    'claim_work_dir',
    'config_errors_exit',
    'default_work_dir',
    'exit_with_error',
    'init_cpu_process_group',
    'launch_rank',
    'load_config',
    'normalize_cfg_options',
    'parse_launcher_args',
    'positive_int',
    'prepare_pseudo_label_cfg',
    'prepare_test_cfg',
    'prepare_train_cfg',
    'registry_error_hints',
    'report_error',
    'setup_cpu_distributed',
    'training_failure_exit',
    'training_precision',
    'use_amp',
    'use_channels_last',
    'use_checked_image_loading',
]
