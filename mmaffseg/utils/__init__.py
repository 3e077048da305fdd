# Copyright (c) mmaffseg contributors. All rights reserved.
from .checkpoint import enable_trusted_checkpoint_loading, load_trusted_local_checkpoint
from .version_check import check_openmmlab_versions

__all__ = [
    'check_openmmlab_versions', 'enable_trusted_checkpoint_loading',
    'load_trusted_local_checkpoint'
]
