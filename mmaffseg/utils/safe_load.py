# Copyright (c) mmaffseg contributors. All rights reserved.
"""Safe (weights-only) loading of the checkpoints mmengine writes.

``torch.load(weights_only=False)`` runs whatever a pickle asks for, so a checkpoint from
somewhere else can execute code. torch's weights-only unpickler builds only tensors, containers
and an allow-list of globals. Checkpoints written by mmengine 0.10 hold, besides tensors
(measured with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints of a
tiny mmengine run and of a quick-start training):

- ``mmengine.logging.history_buffer.HistoryBuffer`` (the message hub's logged scalars),
- numpy arrays and scalars inside them (``numpy.ndarray``, ``numpy.dtype``,
  ``numpy.core.multiarray._reconstruct`` and ``.scalar``; ``numpy._core`` under numpy 2),
- ``builtins.getattr``, which the pickle uses to name HistoryBuffer's statistic methods
  (``getattr(HistoryBuffer, 'mean')``...).

:func:`install_safe_globals` (run on ``import mmaffseg``) allow-lists exactly these, the numpy
names as stand-ins that build only plain numeric arrays from checked state
(:mod:`.numpy_stand_ins`). ``getattr`` is not allow-listed as such: ``builtins.getattr``
resolves to :func:`history_buffer_getattr`, which returns only the statistic methods
registered in ``HistoryBuffer`` and refuses every other attribute (e.g.
``getattr(numpy.ndarray, 'tofile')``).

:func:`load_checkpoint_file` loads this safe way: it refuses a zip archive declaring far more
content than its size (:mod:`.checkpoint_archive`) and, after loading, any tensor or array
declaring more elements than its data holds (:func:`.loaded_arrays.check_loaded`). A file is
unpickled in full only when the environment variable ``MMAFFSEG_TRUSTED_CHECKPOINTS`` names it:
by path, by URL (for the bytes downloaded for that URL, see :mod:`.download_cache`) or by
content (``sha256:<hex>``); trust is decided for the file opened (by its inode, or by the
hash of the very bytes loaded), never for a path that could change before ``torch.load``.
Failures raise :class:`CheckpointError` naming the file, what was refused and how to opt in.
"""
import contextlib
import hashlib
import io
import os
import os.path as osp
import pickle
import re
from typing import Any, BinaryIO, Callable, List, Optional, Union

import numpy as np
import torch

from .checkpoint_archive import content_bytes, damaged_member, inflation_problem
from .loaded_arrays import UnsafeContent, check_loaded
from .numpy_stand_ins import numpy_safe_globals
from .torch_stand_ins import guard_torch_allow_list

#: The environment variable naming checkpoints to unpickle in full (see
#: :func:`trusted_checkpoints`).
TRUSTED_ENV = 'MMAFFSEG_TRUSTED_CHECKPOINTS'
# a content pin, a URL (its ':' only in 'scheme://' or before a port number), or a path
_TRUSTED_ITEM = re.compile(
    r'sha256:[^\s,:]*|[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s,:]|:(?=\d))+|[^\s,:]+')
_SHA256_PIN = re.compile(r'sha256:[0-9a-f]{64}')
_UNREADABLE = 'is not a readable PyTorch checkpoint (truncated, corrupt or another kind of file): '
# HistoryBuffer's built-in statistics (HistoryBuffer._set_default_statistics)
_HISTORY_BUFFER_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')
# Markers of torch's weights-only unpickler refusing a global (as opposed to a corrupt file).
_REFUSAL_MARKERS = ('Unsupported global', 'Can only build', 'Can only create new object',
                    'Trying to call reduce', 'is blocked', 'is not allowed when loading')
File = Union[str, io.BytesIO, BinaryIO]


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
    # a numpy array of the file is a LoadedArray: name the class the user knows
    what = getattr(obj, '__name__', ('ndarray' if isinstance(obj, np.ndarray) else
                                     type(obj).__name__))
    raise pickle.UnpicklingError(
        f'getattr({what}, {name!r}) is not allowed when loading a checkpoint: only '
        'HistoryBuffer statistic methods are')


def mmengine_safe_globals() -> List[Union[Callable, tuple]]:
    """The globals allow-listed for mmengine's checkpoints (see the module docstring).

    Returns:
        list: Entries for :func:`torch.serialization.add_safe_globals`; ``(obj, name)`` pairs
        where the pickle's name resolves to a stand-in.
    """
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')] + numpy_safe_globals()


def _pickle_name(entry: Union[Callable, tuple]) -> str:
    if isinstance(entry, tuple):
        return entry[1]
    return f'{getattr(entry, "__module__", "")}.{getattr(entry, "__qualname__", "")}'


def _overrides_stand_in(entry: Union[Callable, tuple], ours: dict) -> bool:
    """Whether an allow-list entry (of someone else) would bypass our stand-ins: a numpy
    class whose state the unpickler could then set, or another object under one of our names."""
    obj = entry[0] if isinstance(entry, tuple) else entry
    name = _pickle_name(entry)
    if name in ours:
        return ours[name] is not obj
    return isinstance(obj, type) and issubclass(obj, (np.ndarray, np.dtype))


def install_safe_globals() -> None:
    """Allow-list :func:`mmengine_safe_globals` in torch's weights-only unpickler.

    Cheap and run before every safe load: entries added by others that would bypass the numpy
    stand-ins (``numpy.ndarray``, numpy's dtype classes, another object under one of the
    stand-ins' names) are taken off the allow-list, and torch's own ``builtins.bytearray``
    entry is guarded (:mod:`.torch_stand_ins`). Needs torch >= 2.5 (``add_safe_globals``
    with ``(obj, name)`` pairs); with an older torch nothing is installed and mmengine's
    checkpoints load only through the trusted opt-in.
    """
    guard_torch_allow_list()
    serialization = torch.serialization
    if not all(hasattr(serialization, f) for f in ('add_safe_globals', 'get_safe_globals',
                                                   'clear_safe_globals')):
        return
    entries = mmengine_safe_globals()
    ours = {_pickle_name(e): (e[0] if isinstance(e, tuple) else e) for e in entries}
    installed = serialization.get_safe_globals()
    kept = [e for e in installed if not _overrides_stand_in(e, ours)]
    missing = [e for e in entries if e not in installed]
    if len(kept) == len(installed) and not missing:
        return
    serialization.clear_safe_globals()
    try:
        serialization.add_safe_globals(kept + missing)
    except (TypeError, ValueError):  # torch without (obj, name) pairs
        serialization.add_safe_globals(kept)


def trusted_checkpoints() -> List[str]:
    """What ``MMAFFSEG_TRUSTED_CHECKPOINTS`` names: absolute paths, URLs and ``sha256:`` pins.

    Items are separated by ``:`` (as in ``PATH``), ``,`` or white space; a ``:`` inside a URL
    (``scheme://``, ``:port``) or after ``sha256`` does not separate.

    Raises:
        ValueError: A ``sha256:`` item that is not 64 hexadecimal digits.
    """
    out = []
    for item in _TRUSTED_ITEM.findall(os.environ.get(TRUSTED_ENV, '')):
        if item.lower().startswith('sha256:'):
            if not _SHA256_PIN.fullmatch(item.lower()):
                raise ValueError(f'{TRUSTED_ENV} holds {item!r}, which is no content pin: '
                                 'expected sha256: and the 64 hexadecimal digits of the file\'s '
                                 'SHA-256 (as `sha256sum FILE` prints them)')
            out.append(item.lower())
        else:
            out.append(item if '://' in item else osp.realpath(osp.expanduser(item)))
    return out


def is_trusted(source: str) -> bool:
    """Whether ``source`` (a local path or a URL) is named in ``MMAFFSEG_TRUSTED_CHECKPOINTS``.

    A URL's name is not enough to trust a file: the caller must know that the file holds the
    bytes fetched for that URL (see :mod:`.download_cache`).
    """
    if not source:
        return False
    key = source if '://' in source else osp.realpath(osp.expanduser(source))
    return key in trusted_checkpoints()


def file_sha256(file: File) -> str:
    """The SHA-256 of a file (a path or an open binary file, read from its start and left
    there) or of a buffer's bytes, in hexadecimal."""
    if isinstance(file, io.BytesIO):
        return hashlib.sha256(file.getbuffer()).hexdigest()
    digest = hashlib.sha256()
    with (open(file, 'rb') if isinstance(file, str) else contextlib.nullcontext(file)) as f:
        f.seek(0)
        for block in iter(lambda: f.read(1 << 24), b''):
            digest.update(block)
        f.seek(0)
    return digest.hexdigest()


def _path_trusted(file: BinaryIO, names: List[str]) -> bool:
    """Whether the open ``file`` is a file named by path in ``names`` (the same file on disk,
    whatever path it was opened by: a path renamed or re-linked after opening does not count)."""
    opened = os.fstat(file.fileno())
    for name in names:
        if name.startswith('sha256:') or '://' in name:
            continue
        try:
            if osp.samestat(opened, os.stat(name)):
                return True
        except OSError:
            continue
    return False


def _opt_in(file: File, source: str) -> str:
    """How to unpickle ``file`` in full, for a refusal message."""
    return (f'If you trust this file (e.g. an old checkpoint you made yourself), name it in the '
            f'environment variable {TRUSTED_ENV} (several separated by ":") to unpickle it in '
            f'full, e.g. {TRUSTED_ENV}={source}, or pin its content: '
            f'{TRUSTED_ENV}=sha256:{file_sha256(file)}')


def _short(error: BaseException) -> str:
    """``error`` in one line, without torch's advice to load with ``weights_only=False``."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if 'WeightsUnpickler error:' in line:
            detail = line.split('WeightsUnpickler error:', 1)[1].strip()
            return _first_sentence(detail or (lines[i + 1] if i + 1 < len(lines) else ''))
    for line in lines[1:]:  # e.g. "Trying to load unsupported GLOBAL posix.system whose ..."
        if any(marker in line for marker in _REFUSAL_MARKERS):
            return _first_sentence(line)
    return f'{type(error).__name__}: {_first_sentence(lines[0] if lines else "")}'


def _first_sentence(text: str) -> str:
    return text.split('. ', 1)[0].rstrip('.')


def _refusal(error: BaseException) -> Optional[str]:
    """The weights-only unpickler's refusal reason in ``error``, or None for other errors."""
    text = str(error)
    if not any(marker in text for marker in _REFUSAL_MARKERS):
        return None
    return _short(error)


def load_checkpoint_file(file: File,
                         map_location: Optional[Union[str, Callable, torch.device]] = None,
                         source: Optional[str] = None,
                         trusted: bool = False,
                         sha256: Optional[str] = None) -> Any:
    """Load a checkpoint safely (weights-only with mmengine's allow-list) unless trusted.

    A file is opened once: it is checked, hashed (when a ``sha256:`` pin or ``sha256`` asks for
    it; then its bytes are read into memory first, so the bytes hashed are the bytes loaded) and
    loaded through that one handle, so a file renamed over the path after a check is not the
    one loaded.

    Args:
        file (str | BytesIO): A local file, or the bytes of a downloaded one.
        map_location: Passed to :func:`torch.load`.
        source (str, optional): What to call the checkpoint in messages (e.g. its URL).
            Defaults to ``file``. For bytes, naming ``source`` in ``MMAFFSEG_TRUSTED_CHECKPOINTS``
            trusts them (they were fetched for it just now); a file is trusted by its own path.
        trusted (bool): The user trusted this very file otherwise (e.g. a tool's ``--trust``
            flag that applies to one named file): unpickle it in full.
        sha256 (str, optional): Trust the file if its bytes have this SHA-256 (hexadecimal),
            e.g. the one recorded when a trusted URL was downloaded; else load it safely.

    Returns:
        The unpickled checkpoint.

    Raises:
        CheckpointError: The file is missing, unreadable (empty, truncated, not a checkpoint),
            declares far more content than its size, or holds objects or arrays that safe
            loading refuses; the message says how to opt in.
    """
    install_safe_globals()
    if source is None:
        source = file if isinstance(file, str) else '<bytes>'
    if not isinstance(file, str):
        return _load_open(file, source, map_location, trusted, sha256)
    path = osp.expanduser(file)
    if not osp.isfile(path):
        raise CheckpointError(source, 'does not exist')
    try:
        opened = open(path, 'rb')
    except OSError as e:
        raise CheckpointError(source, f'cannot be read: {e.strerror or e}') from None
    with opened:
        if os.fstat(opened.fileno()).st_size == 0:
            raise CheckpointError(source, 'is empty (0 bytes), e.g. from an interrupted write')
        return _load_open(opened, source, map_location, trusted, sha256)


def _load_open(file: Union[io.BytesIO, BinaryIO], source: str,
               map_location: Optional[Union[str, Callable, torch.device]], trusted: bool,
               sha256: Optional[str]) -> Any:
    """:func:`load_checkpoint_file` of an open file (a real file, or bytes)."""
    fetched = isinstance(file, io.BytesIO)
    try:
        names = trusted_checkpoints()
        # bytes given (fetched just now) for a trusted source, or a file named by path
        trusted = trusted or (source in names if fetched else _path_trusted(file, names))
        if not trusted and (sha256 is not None or any(n.startswith('sha256:') for n in names)):
            if not fetched:  # the bytes hashed must be the bytes loaded
                file.seek(0)
                file = io.BytesIO(file.read())
            digest = file_sha256(file)
            trusted = digest == sha256 or f'sha256:{digest}' in names
        too_big = inflation_problem(file)
        if too_big is not None:
            raise CheckpointError(source, too_big)
    except ValueError as e:  # a limit or a pin in the environment that is no such thing
        raise CheckpointError(source, f'cannot be loaded: {e}') from None
    damaged = damaged_member(file)
    if damaged is not None:
        raise CheckpointError(
            source, f'is corrupt: the CRC-32 of its member {damaged} does not match (a damaged '
            'copy or a disk error); copy or download it again')
    try:
        # sparse tensors are checked against their size (torch skips it by default)
        with (contextlib.nullcontext() if trusted else
              torch.sparse.check_sparse_tensor_invariants(enable=True)):
            checkpoint = torch.load(file, map_location=map_location, weights_only=not trusted)
    except pickle.UnpicklingError as e:
        refused = None if trusted else _refusal(e)
        if refused is None:
            raise CheckpointError(source, _UNREADABLE + _short(e)) from None
        raise CheckpointError(
            source, f'was refused by safe loading ({refused}). It holds Python objects other '
            'than tensors and what mmengine itself writes, and unpickling them could run code '
            f'from the file. {_opt_in(file, source)}') from None
    except (EOFError, MemoryError, RuntimeError, ValueError, OSError, IndexError,
            KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise CheckpointError(source, _UNREADABLE + _short(e)) from None
    if trusted:
        return checkpoint
    try:
        return check_loaded(checkpoint, content_bytes(file))
    except UnsafeContent as e:
        raise CheckpointError(source, f'was refused by safe loading: {e}. {_opt_in(file, source)}'
                              ) from None
    except RecursionError:
        raise CheckpointError(source, 'was refused by safe loading: its containers nest deeper '
                              'than Python\'s recursion limit') from None
