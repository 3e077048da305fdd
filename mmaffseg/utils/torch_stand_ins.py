# Copyright (c) mmaffseg contributors. All rights reserved.
"""Entries of torch's own weights-only allow-list that build more than a file holds.

torch's weights-only unpickler calls every global of its built-in allow-list
(``torch._weights_only_unpickler._get_allowed_globals``) with whatever arguments the pickle
gives. ``builtins.bytearray`` is on it for pickled bytearrays (protocol 2 writes
``bytearray('...', 'latin-1')``), but ``bytearray(n)`` allocates and zeroes ``n`` bytes: a
1 KB checkpoint takes gigabytes while loading. The built-in list takes precedence over
``add_safe_globals``, so :func:`guard_torch_allow_list` replaces that entry, in the cached
table torch reads for every load, with :func:`bytearray_from_data`, which builds a bytearray
only from data in the file.

The tensor and storage classes of the same list (``torch.FloatTensor(n)``,
``torch.UntypedStorage(n)``) allocate without touching the memory; a tensor built so holds no
data from the file, which :func:`.loaded_arrays.check_loaded` refuses after loading.
"""
import pickle
from typing import Any

import torch

_LATIN_1 = ('latin-1', 'latin1', 'iso-8859-1')


def bytearray_from_data(*args: Any) -> bytearray:
    """``builtins.bytearray`` in weights-only loading: a bytearray from data of the file.

    Accepts what pickles of bytearrays hold: ``()``, ``(bytes,)`` and ``(str, 'latin-1')``.

    Raises:
        pickle.UnpicklingError: For anything else (a size, an iterable, another encoding).
    """
    if not args:
        return bytearray()
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytearray(args[0])
    if (len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], str)
            and args[1].lower() in _LATIN_1):
        return bytearray(args[0], 'latin-1')
    what = ', '.join(type(a).__name__ for a in args)
    raise pickle.UnpicklingError(
        f'bytearray({what}) is not allowed when loading a checkpoint: only bytearrays from '
        'their data are (bytearray(n) would allocate n bytes)')


def guard_torch_allow_list() -> None:
    """Put :func:`bytearray_from_data` in place of ``builtins.bytearray`` in torch's built-in
    weights-only allow-list (idempotent; nothing when this torch keeps no such table)."""
    unpickler = getattr(torch, '_weights_only_unpickler', None)
    allowed_globals = getattr(unpickler, '_get_allowed_globals', None)
    if allowed_globals is None:
        return
    allowed = allowed_globals()  # cached by torch: the table every weights-only load reads
    if isinstance(allowed, dict) and allowed.get('builtins.bytearray') is bytearray:
        allowed['builtins.bytearray'] = bytearray_from_data
