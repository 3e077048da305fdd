# Copyright (c) mmaffseg contributors. All rights reserved.
from .atomic_io import atomic_write_bytes, remove_stale_temp_files  # noqa: F401
from .checkpoint import enable_trusted_checkpoint_loading, load_trusted_local_checkpoint
from .profiling import peak_rss_mb, time_fn

__all__ = [
    'enable_trusted_checkpoint_loading',
    'load_trusted_local_checkpoint',
    'peak_rss_mb',
    'time_fn',
]
