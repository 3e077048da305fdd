# Copyright (c) mmaffseg contributors. All rights reserved.
"""Errors in what a user gave a tool (a config file, its settings, its data), reported in one
line.

The tools (``tools/train.py``, ``tools/test.py``, ``tools/deployment/pytorch2onnx.py``) turn
them into ``TOOL: error: ...`` and exit status 2 through
:func:`mmaffseg.cli.errors.config_errors_exit`; library callers get the exception.
"""


class ConfigFileError(FileNotFoundError):
    """The config file given to a tool does not exist."""


class ConfigCheckError(ValueError):
    """A config setting that cannot work (e.g. a head's ``num_classes`` that is not the
    dataset's, ``SyncBN`` without GPUs); the message names the setting and the fix."""


class DataRootError(FileNotFoundError):
    """A dataloader's ``data_root`` that does not exist; the message names the config key."""


class OutputDirError(OSError):
    """An output folder (``--work-dir``, ``--out``) that cannot be created or written."""


class DataFileError(ValueError):
    """A data file (image, label map) that cannot be used; the message names the file, the
    problem and the fix. Raised by mmaffseg's checked loading transforms."""
