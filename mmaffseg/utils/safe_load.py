# Copyright (c) mmaffseg contributors. All rights reserved.
"""Safe (weights-only) loading of the checkpoints mmengine writes.

``torch.load(weights_only=False)`` runs whatever a pickle asks for, so a checkpoint from
somewhere else can execute code. torch's weights-only unpickler builds only tensors, containers
and an allow-list of globals. Checkpoints written by mmengine 0.10 hold, besides tensors
(measured with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints of a
tiny mmengine run and of a quick-start training):

- ``mmengine.logging.history_buffer.HistoryBuffer`` (the message hub's logged scalars),
- numpy arrays and scalars inside them: ``numpy.ndarray``, ``numpy.dtype``, the numeric dtype
  classes (``numpy.dtypes.Float64DType``...), ``numpy.core.multiarray._reconstruct`` and
  ``numpy.core.multiarray.scalar`` (``numpy._core`` under numpy 2),
- ``builtins.getattr``, which the pickle uses to name HistoryBuffer's statistic methods
  (``getattr(HistoryBuffer, 'mean')``...).

:func:`install_safe_globals` (run on ``import mmaffseg``) allow-lists exactly these. ``getattr``
is not allow-listed as such: ``builtins.getattr`` resolves to :func:`history_buffer_getattr`,
which returns only the statistic methods registered in ``HistoryBuffer`` and refuses every
other attribute (e.g. ``getattr(numpy.ndarray, 'tofile')``).

:func:`load_checkpoint_file` loads this safe way, unless the file is named in the environment
variable ``MMAFFSEG_TRUSTED_CHECKPOINTS`` (paths or URLs separated by ``:``); only
then is it unpickled in full, for old checkpoints that hold other objects. Failures raise
:class:`CheckpointError` naming the file, what was refused and how to opt in.
"""
import io
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Callable, List, Optional, Union

import numpy as np
import torch

TRUSTED_ENV = 'MMAFFSEG_TRUSTED_CHECKPOINTS'
# a URL (its ':' only in 'scheme://' or before a port number), or a path without ':'
_TRUSTED_ITEM = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s,:]|:(?=\d))+|[^\s,:]+')

# numpy's pickles name these by their numpy-1 path; numpy 2 moved them to numpy._core.
_NUMPY_MULTIARRAY_NAMES = ('numpy.core.multiarray', 'numpy._core.multiarray')
_NUMERIC_DTYPE_KINDS = 'biuf'  # bool, signed and unsigned integers, floats
_UNREADABLE = 'is not a readable PyTorch checkpoint (truncated, corrupt or another kind of file): '
# HistoryBuffer's built-in statistics (HistoryBuffer._set_default_statistics)
_HISTORY_BUFFER_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')
# Markers of torch's weights-only unpickler refusing a global (as opposed to a corrupt file).
_REFUSAL_MARKERS = ('Unsupported global', 'Can only build', 'Can only create new object',
                    'Trying to call reduce', 'is blocked', 'is not allowed when loading')


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, refused, or not for this model.

    Args:
        source (str): The file or URL.
        reason (str): What is wrong and what to do, completing "checkpoint <source> ...".
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f'checkpoint {source} {reason}')


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to the statistic methods of mmengine's ``HistoryBuffer``.

    Stands in for ``builtins.getattr`` in weights-only loading: mmengine's checkpoints pickle
    ``HistoryBuffer._statistics_methods`` (``min``, ``max``, ``current``, ``mean`` and any
    registered with ``HistoryBuffer.register_statistics``) as ``getattr(HistoryBuffer, name)``.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and isinstance(name, str):
        if name in HistoryBuffer._statistics_methods:  # filled by the first HistoryBuffer()
            return HistoryBuffer._statistics_methods[name]
        if name in _HISTORY_BUFFER_DEFAULT_STATISTICS:
            return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) is not allowed '
        'when loading a checkpoint: only HistoryBuffer statistic methods are')


def mmengine_safe_globals() -> List[Union[Callable, tuple]]:
    """The globals allow-listed for mmengine's checkpoints (see the module docstring).

    Returns:
        list: Entries for :func:`torch.serialization.add_safe_globals`; ``(obj, name)`` pairs
        where the pickle's name differs from the object's own.
    """
    from mmengine.logging import HistoryBuffer
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    entries: List[Union[Callable, tuple]] = [HistoryBuffer, np.ndarray, np.dtype]
    for module in _NUMPY_MULTIARRAY_NAMES:
        entries += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    for char in np.typecodes['All']:
        dtype = np.dtype(char)
        if dtype.kind in _NUMERIC_DTYPE_KINDS and type(dtype) is not np.dtype:
            entries.append(type(dtype))  # numpy >= 1.25 has a class per dtype
    entries.append((history_buffer_getattr, 'builtins.getattr'))
    return entries


_INSTALLED = False


def install_safe_globals() -> None:
    """Allow-list :func:`mmengine_safe_globals` in torch's weights-only unpickler (idempotent).

    Needs torch >= 2.5 (``add_safe_globals`` with ``(obj, name)`` pairs); with an older torch
    nothing is installed and mmengine's checkpoints load only through the trusted opt-in.
    """
    global _INSTALLED
    if _INSTALLED:
        return
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        return
    try:
        add(mmengine_safe_globals())
    except (TypeError, ValueError):  # torch without (obj, name) pairs
        return
    _INSTALLED = True


def trusted_checkpoints() -> List[str]:
    """Files and URLs named in ``MMAFFSEG_TRUSTED_CHECKPOINTS`` (local paths made absolute).

    Items are separated by ``:`` (as in ``PATH``), ``,`` or white space; a ``:`` inside a URL
    (``scheme://``, ``:port``) does not separate.
    """
    out = []
    for item in _TRUSTED_ITEM.findall(os.environ.get(TRUSTED_ENV, '')):
        out.append(item if '://' in item else osp.realpath(osp.expanduser(item)))
    return out


def is_trusted(source: str) -> bool:
    """Whether ``source`` (a local path or a URL) is named in ``MMAFFSEG_TRUSTED_CHECKPOINTS``."""
    if not source:
        return False
    key = source if '://' in source else osp.realpath(osp.expanduser(source))
    return key in trusted_checkpoints()


def _short(error: BaseException) -> str:
    """``error`` in one line, without torch's advice to load with ``weights_only=False``."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if 'WeightsUnpickler error:' in line:
            detail = line.split('WeightsUnpickler error:', 1)[1].strip()
            return _first_sentence(detail or (lines[i + 1] if i + 1 < len(lines) else ''))
    return f'{type(error).__name__}: {_first_sentence(lines[0] if lines else "")}'


def _first_sentence(text: str) -> str:
    return text.split('. ', 1)[0].rstrip('.')


def _refusal(error: BaseException) -> Optional[str]:
    """The weights-only unpickler's refusal reason in ``error``, or None for other errors."""
    text = str(error)
    if not any(marker in text for marker in _REFUSAL_MARKERS):
        return None
    return _short(error)


def damaged_member(file: Union[str, io.BytesIO]) -> Optional[str]:
    """The first member of a torch zip checkpoint whose CRC-32 does not match, else None.

    ``torch.load`` does not check the CRCs that ``torch.save`` writes, so a flipped byte in the
    tensor data would load as a silently different weight. Members stored with a CRC of 0
    (written with ``torch.serialization.set_crc32_options(False)``) are not checked; files that
    are not zip archives (legacy format) are left to ``torch.load``.
    """
    if not zipfile.is_zipfile(file):
        return None
    try:
        with zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                if info.CRC == 0:
                    continue
                try:
                    with archive.open(info) as member:
                        while member.read(1 << 24):
                            pass
                except zipfile.BadZipFile:
                    return info.filename
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None  # unreadable archives: torch.load names the problem
    finally:
        if not isinstance(file, str):
            file.seek(0)
    return None


def load_checkpoint_file(file: Union[str, io.BytesIO],
                         map_location: Optional[Union[str, Callable, torch.device]] = None,
                         source: Optional[str] = None,
                         trusted_names: tuple = (),
                         trusted: bool = False) -> Any:
    """Load a checkpoint safely (weights-only with mmengine's allow-list) unless trusted.

    Args:
        file (str | BytesIO): A local file, or the bytes of a downloaded one.
        map_location: Passed to :func:`torch.load`.
        source (str, optional): What to call the checkpoint in messages (e.g. its URL).
            Defaults to ``file``.
        trusted_names (tuple[str]): Further names under which the user may have trusted the
            checkpoint (e.g. the cached file of a URL).
        trusted (bool): The user trusted this very file otherwise (e.g. a tool's ``--trust``
            flag that applies to one named file): unpickle it in full.

    Returns:
        The unpickled checkpoint.

    Raises:
        CheckpointError: The file is missing, unreadable (empty, truncated, not a checkpoint)
            or holds objects that safe loading refuses; the message says how to opt in.
    """
    install_safe_globals()
    if source is None:
        source = file if isinstance(file, str) else '<bytes>'
    if isinstance(file, str):
        file = osp.expanduser(file)
        if not osp.isfile(file):
            raise CheckpointError(source, 'does not exist')
        if osp.getsize(file) == 0:
            raise CheckpointError(source, 'is empty (0 bytes), e.g. from an interrupted write')
    names = (source, ) + tuple(trusted_names) + ((file, ) if isinstance(file, str) else ())
    trusted = trusted or any(is_trusted(name) for name in names)
    damaged = damaged_member(file)
    if damaged is not None:
        raise CheckpointError(
            source, f'is corrupt: the CRC-32 of its member {damaged} does not match (a damaged '
            'copy or a disk error); copy or download it again')
    try:
        return torch.load(file, map_location=map_location, weights_only=not trusted)
    except pickle.UnpicklingError as e:
        refused = None if trusted else _refusal(e)
        if refused is None:
            raise CheckpointError(source, _UNREADABLE + _short(e)) from None
        raise CheckpointError(
            source,
            f'was refused by safe loading ({refused}). It holds Python objects other than '
            'tensors and what mmengine itself writes, and unpickling them could run code from '
            'the file. If you trust this file (e.g. an old checkpoint you made yourself), name '
            f'it in the environment variable {TRUSTED_ENV} (several separated by ":") to '
            f'unpickle it in full, e.g. {TRUSTED_ENV}={source}'
        ) from None
    except (EOFError, MemoryError, RuntimeError, ValueError, OSError, IndexError,
            KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise CheckpointError(source, _UNREADABLE + _short(e)) from None
