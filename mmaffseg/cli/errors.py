# Copyright (c) mmaffseg contributors. All rights reserved.
"""Errors of the tools' inputs turned into one-line messages naming the argument to fix.

:func:`config_errors_exit` and :func:`checkpoint_errors_exit` print ``<tool>: error: ...`` and
exit with status 2 (argparse's convention); :func:`registry_error_hints` adds the closest
registered names to mmengine's "not in the registry" error.

Under ``torchrun`` (``tools/dist_train.sh``) the message is also written to the error file the
launcher gives each worker (``$TORCHELASTIC_ERROR_FILE``), so the launcher's closing failure
report, the last thing a user sees, names the problem instead of "To enable traceback see ...".
"""
import argparse
import contextlib
import difflib
import errno
import json
import os
import os.path as osp
import re
import sys
import time
from typing import Dict, Iterator, NoReturn

from ..utils import CheckpointError, NonFiniteError
from ..utils.config_errors import (
    ConfigCheckError,
    ConfigFileError,
    DataFileError,
    DataRootError,
    OutputDirError,
)


def report_error(message: str) -> int:
    """Print ``<tool>: error: <message>`` to stderr and return the exit status, 2.

    In a worker started by ``torchrun`` the message also goes to ``$TORCHELASTIC_ERROR_FILE``
    (the JSON layout torch's ``ErrorHandler.record_exception`` writes), which the launcher
    prints as the root cause of the failed run. For a tool's ``main`` that returns its status;
    :func:`exit_with_error` exits with it.
    """
    line = f'{osp.basename(sys.argv[0])}: error: {message}'
    print(line, file=sys.stderr)
    error_file = os.environ.get('TORCHELASTIC_ERROR_FILE')
    if error_file:
        data = {'message': {'message': line, 'extraInfo': {
            'py_callstack': line, 'timestamp': str(int(time.time()))}}}
        try:
            with open(error_file, 'w') as f:
                json.dump(data, f)
        except OSError:
            pass  # the message is on stderr already
    return 2


def positive_int(text: str) -> int:
    """argparse ``type`` of a size: an integer >= 1 (argparse reports anything else with the
    argument's name and exit status 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {value}')
    return value


def exit_with_error(message: str) -> NoReturn:
    """:func:`report_error`, then exit with status 2."""
    sys.exit(report_error(message))


@contextlib.contextmanager
def config_errors_exit() -> Iterator[None]:
    """Turn a missing config file (:class:`ConfigFileError`, naming the ``CONFIG`` argument)
    a setting that cannot work (:class:`ConfigCheckError`, :class:`DataRootError`), an
    unwritable output folder (:class:`OutputDirError`) or an unusable image or label file met
    while training or testing (:class:`DataFileError`) into a one-line message and exit
    status 2, as :func:`checkpoint_errors_exit` does; so is a loop of symbolic links in a data
    folder (``ELOOP``), naming the link."""
    try:
        yield
    except ConfigFileError as e:
        exit_with_error(f'CONFIG: {e}')
    except (ConfigCheckError, DataRootError) as e:
        exit_with_error(str(e))
    except OutputDirError as e:
        exit_with_error(e.strerror)
    except DataFileError as e:
        # raised in a dataloader worker, the message carries the worker's traceback: keep the
        # error's own last line
        message = str(e).rstrip().splitlines()[-1]
        exit_with_error(message.split(f'{DataFileError.__name__}: ', 1)[-1])
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        exit_with_error(_symlink_loop_message(e))


def _symlink_loop_message(error: OSError) -> str:
    """An ``ELOOP`` error (listing a data folder, opening a file) as a line naming the link:
    the first symbolic link on the path (a folder linked to its own ancestor makes the path
    repeat it until the system's limit of 40 links)."""
    path = os.fsdecode(error.filename or '')
    parts = path.split(os.sep)
    link = next((os.sep.join(parts[:i]) for i in range(2, len(parts) + 1)
                 if osp.islink(os.sep.join(parts[:i]))), path)
    target = os.readlink(link) if osp.islink(link) else '?'
    return (f'{link} -> {target}: a loop of symbolic links ("{error.strerror}"), the link leads '
            'back to itself or to a folder above it; remove or fix it')


def _registry_names() -> list:
    import mmseg.registry as seg_registry
    from mmengine.registry import Registry
    names = set()
    for obj in vars(seg_registry).values():
        if isinstance(obj, Registry):
            for reg in (obj, obj.parent) if obj.parent is not None else (obj, ):
                names.update(reg.module_dict)
    return sorted(names)


class ConfigArgumentError(ConfigCheckError, TypeError):
    """A class built from the config was given an argument it does not take (a misspelt key
    of a dict with a ``type``, in the config file); the message names the class, the key and
    the closest arguments. A ``TypeError`` too, as the error it replaces."""


_UNEXPECTED_ARGUMENT = re.compile(r"(\S+)\(\) got an unexpected keyword argument '([^']+)'")


def _built_class(tb) -> object:
    """The class that the innermost ``build_from_cfg`` on a traceback was building."""
    built = None
    while tb is not None:
        if tb.tb_frame.f_code.co_name == 'build_from_cfg':
            built = tb.tb_frame.f_locals.get('obj_cls', built)
        tb = tb.tb_next
    return built


def _argument_error(error: TypeError) -> ConfigArgumentError:
    """mmengine's raw "got an unexpected keyword argument" as one line with the closest
    arguments of the class being built."""
    from .cfg_options import _arguments
    match = _UNEXPECTED_ARGUMENT.search(str(error))
    key = match.group(2)
    built = _built_class(error.__traceback__)
    name = getattr(built, '__name__', None) or match.group(1).split('.')[0]
    arguments = _arguments(built) if built is not None else None
    close = difflib.get_close_matches(key, sorted(arguments or ()), n=3, cutoff=0.6)
    hint = f'; did you mean {" or ".join(close)}?' if close else ''
    return ConfigArgumentError(
        f'the config gives {name} the setting {key!r}, which it does not take ({match.group(0)}): '
        f'a misspelt key of its dict in the config file{hint}')


@contextlib.contextmanager
def registry_error_hints() -> Iterator[None]:
    """Re-raise mmengine's "X is not in the Y registry" KeyError with the closest names, and
    a class built from the config that gets an argument it does not take (a ``TypeError``) as
    a one-line :class:`ConfigArgumentError` (a :class:`ConfigCheckError`, which
    :func:`config_errors_exit` reports) with the class's closest arguments."""
    try:
        yield
    except TypeError as e:
        if (isinstance(e, ConfigCheckError) or _UNEXPECTED_ARGUMENT.search(str(e)) is None
                or _built_class(e.__traceback__) is None):
            raise
        raise _argument_error(e) from e
    except KeyError as e:
        match = re.search(r'(\S+) is not in the (\S+) registry', str(e))
        if match is None:
            raise
        name = match.group(1).strip('\'"`')
        close = difflib.get_close_matches(name, _registry_names(), n=3, cutoff=0.6)
        hint = f' Did you mean {", ".join(close)}?' if close else ''
        raise KeyError(
            f'the config names type {name!r}, which is not registered in the {match.group(2)} '
            f'registry.{hint} If it comes from a plugin, add it to custom_imports (mmaffseg '
            'modules register on `import mmaffseg`).') from e


@contextlib.contextmanager
def training_failure_exit() -> Iterator[None]:
    """Turn a diverged training (:class:`NonFiniteError`: a non-finite loss, or weights that
    would be saved non-finite) into a one-line message and exit status 1 (a failed run, not
    a bad input)."""
    try:
        yield
    except NonFiniteError as e:
        report_error(str(e))
        sys.exit(1)


@contextlib.contextmanager
def checkpoint_errors_exit(arguments: Dict[str, str]) -> Iterator[None]:
    """Turn a :class:`CheckpointError` into a one-line message and exit status 2.

    Args:
        arguments (dict): Checkpoint file or URL -> the argument or setting that named it
            (e.g. ``{'work_dirs/x/iter_8.pth': 'CHECKPOINT'}``), so the message says which one to
            fix. Checkpoints not listed were named by the config (e.g. ``init_cfg``).
    """
    try:
        yield
    except CheckpointError as e:
        named = {osp.realpath(k) if '://' not in k else k: v for k, v in arguments.items() if k}
        key = osp.realpath(e.source) if '://' not in e.source else e.source
        argument = named.get(key, 'a checkpoint named in the config (load_from, init_cfg or '
                             'pretrained)')
        exit_with_error(f'{argument}: {e}')
