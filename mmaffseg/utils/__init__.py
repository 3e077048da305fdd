# Copyright (c) mmaffseg contributors. All rights reserved.
from .atomic_io import atomic_write_bytes, remove_stale_temp_files
from .checkpoint import (
    check_state_dict,
    install_safe_checkpoint_loading,
    load_model_weights,
    resolve_resume_checkpoint,
)
from .config_errors import (
    ConfigCheckError,
    ConfigFileError,
    DataFileError,
    DataRootError,
    OutputDirError,
)
from .finite import NonFiniteError, check_finite_weights
from .output_folder import check_output_folder
from .safe_load import TRUSTED_ENV, CheckpointError, load_checkpoint_file

__all__ = [
    'check_finite_weights',
    'check_output_folder',
    'CheckpointError',
    'ConfigCheckError',
    'ConfigFileError',
    'DataRootError',
    'DataFileError',
    'NonFiniteError',
    'OutputDirError',
    'TRUSTED_ENV',
    'atomic_write_bytes',
    'check_state_dict',
    'install_safe_checkpoint_loading',
    'load_checkpoint_file',
    'load_model_weights',
    'remove_stale_temp_files',
    'resolve_resume_checkpoint',
]
