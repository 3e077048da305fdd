# Copyright (c) mmaffseg contributors. All rights reserved.
"""numpy's names in weights-only loading: stand-ins that build only plain numeric arrays.

mmengine's checkpoints pickle numpy arrays (the message hub's ``HistoryBuffer`` histories) and
numpy scalars. numpy unpickles them by trusting the state in the file: ``dtype.__setstate__``
accepts fields and flags that turn a ``float64`` dtype into one holding object pointers (an
array of it hands 8 bytes of the file to Python as an object: a crash when copied), and
``ndarray(shape, dtype, buffer, offset, strides)`` accepts zero strides (a few bytes declared as
gigabytes, allocated when copied). So the names numpy's pickles use resolve, in weights-only
loading, to stand-ins that build only what plain numeric arrays need (what ``np.save`` writes):

- ``numpy.dtype(code, align, copy)``: a :class:`PickledDtype`, a numeric type code (``'f8'``,
  ``'i8'``, ``'b1'``...) whose state may set the byte order and nothing else;
- ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')``: an empty
  :class:`LoadedArray`, whose state must be ``(1, shape, numeric dtype, fortran, data)`` with
  exactly the bytes the shape needs, and is set once (numpy frees the data of a state set again,
  which a tensor made from the array in between would still point into);
- ``numpy.core.multiarray.scalar(dtype, data)``: a numpy scalar of a numeric dtype from exactly
  its bytes;
- ``numpy.ndarray``: a name only (``_reconstruct``'s first argument), neither callable nor
  constructible (``numpy._core`` is numpy 2's name of ``numpy.core``);
- ``builtins.bytes()``: ``b''`` (pickle protocol 2 writes an empty array's data so), nothing
  else (``bytes(n)`` would allocate ``n`` bytes).

Anything else raises :class:`pickle.UnpicklingError` during loading. :class:`LoadedArray` is an
``ndarray`` subclass because only a class of ours can check the state before numpy sees it; it
pickles as a plain ``ndarray``, and :func:`.loaded_arrays.check_loaded` turns it into one.
"""
import math
import pickle
import re
from typing import Any, List, Tuple

import numpy as np

try:
    from numpy._core import multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray

# numpy's pickles name these by their numpy-1 path; numpy 2 moved them to numpy._core.
_MULTIARRAY_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')
_NUMERIC_CODE = re.compile(r'[biuf]\d{1,2}')  # bool, signed/unsigned integers, floats
_BYTE_ORDERS = {'<': '<', '>': '>', '|': '=', '=': '='}
# the state numpy pickles for a numeric dtype: (version, byte order, subarray, names, fields,
# element size, alignment, flags); only the byte order varies
_NUMERIC_DTYPE_STATE_TAIL = (None, None, None, -1, -1, 0)


def _refuse(what: str, only: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(f'{what} is not allowed when loading a checkpoint: only '
                                  f'{only} are')


def _summary(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '[...]'


class GlobalName:
    """A global's name that may only be passed around (``numpy.ndarray`` in array pickles)."""

    __slots__ = ('name', )

    def __new__(cls, *args: Any) -> 'GlobalName':
        if not isinstance(cls, type):  # NEWOBJ on the name: numpy.ndarray(shape, ..., strides)
            raise _refuse(f'constructing {cls!r}{_summary(args, 60)}',
                          'numpy arrays from their pickled state')
        return object.__new__(cls)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any) -> None:
        raise _refuse(f'calling {self!r}{_summary(args, 60)}',
                      'numpy arrays from their pickled state')

    def __repr__(self) -> str:
        return self.name


NDARRAY_NAME = GlobalName('numpy.ndarray')


class PickledDtype:
    """``numpy.dtype(code, align, copy)`` of a pickle: a numeric type code and a byte order.

    Args:
        code (str): numpy's type code (``'f8'``, ``'i4'``, ``'u1'``, ``'b1'``...).
        align (bool): Must be false (numpy pickles false for numeric dtypes).
        copy (bool): Ignored (a fresh dtype is built for each use).

    Raises:
        pickle.UnpicklingError: For any other code (objects, strings, records...).
    """

    __slots__ = ('code', 'byteorder')

    def __new__(cls, code: Any = None, align: Any = False, copy: Any = True) -> 'PickledDtype':
        if not (isinstance(code, str) and _NUMERIC_CODE.fullmatch(code)) or align:
            raise _refuse(f'numpy.dtype({_summary(code)}, align={_summary(align)})',
                          'plain numeric dtypes ("f8", "i8", "u1"...)')
        self = object.__new__(cls)
        self.code, self.byteorder = code, '='
        return self

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3
                and isinstance(state[1], str) and state[1] in _BYTE_ORDERS
                and state[2:] == _NUMERIC_DTYPE_STATE_TAIL):
            raise _refuse(f'numpy dtype state {_summary(state)}',
                          'those of plain numeric dtypes (no fields, sub-arrays or flags)')
        self.byteorder = state[1]

    @property
    def dtype(self) -> np.dtype:
        """The dtype, built afresh from the (re-checked) code and byte order."""
        return checked_dtype(self)

    def __reduce__(self):
        return self.dtype.__reduce__()

    def __repr__(self) -> str:
        return f'PickledDtype({self.code!r}, byteorder={self.byteorder!r})'


def checked_dtype(dtype: Any) -> np.dtype:
    """A fresh plain numeric ``np.dtype`` equal to ``dtype``, else raise UnpicklingError.

    Accepts a :class:`PickledDtype` or an ``np.dtype``; builds the result from its type code
    only, so nothing else a file set on the object survives.
    """
    if isinstance(dtype, PickledDtype):
        code, order = getattr(dtype, 'code', None), getattr(dtype, 'byteorder', None)
    elif isinstance(dtype, np.dtype):
        code, order = f'{dtype.kind}{dtype.itemsize}', dtype.byteorder
        if dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject:
            code = None
    else:
        code = order = None
    if not (isinstance(code, str) and _NUMERIC_CODE.fullmatch(code)
            and isinstance(order, str) and order in _BYTE_ORDERS):
        raise _refuse(f'numpy dtype {_summary(dtype)}', 'plain numeric dtypes')
    try:
        result = np.dtype(_BYTE_ORDERS[order] + code)
    except TypeError:
        raise _refuse(f'numpy dtype code {code!r}', 'plain numeric dtypes') from None
    if f'{result.kind}{result.itemsize}' != code:  # e.g. 'b2', 'f3': no such numeric dtype
        raise _refuse(f'numpy dtype code {code!r}', 'plain numeric dtypes')
    return result


class LoadedArray(np.ndarray):
    """A numpy array unpickled in weights-only loading: its state is checked first.

    Only :func:`reconstruct_array` makes one (calling or constructing the class raises);
    it pickles as a plain ``np.ndarray``.
    """

    def __new__(cls, *args, **kwargs):
        raise _refuse('constructing LoadedArray', 'numpy arrays from their pickled state')

    def __setstate__(self, state: Any) -> None:
        if self.__dict__.get('_state_set'):
            # numpy would drop the first data while a tensor made from the array in between
            # (torch._utils._rebuild_device_tensor_from_numpy shares its memory) still points
            # into it: a use after free
            raise _refuse('setting a numpy array\'s state twice', 'arrays with one state')
        if not (isinstance(state, tuple) and len(state) == 5):
            raise _refuse(f'numpy array state {_summary(state)}',
                          '(1, shape, dtype, fortran_order, data) states')
        version, shape, dtype, fortran, data = state
        dtype = checked_dtype(dtype)
        if not (version == 1 and isinstance(shape, tuple)
                and all(type(n) is int and n >= 0 for n in shape)
                and isinstance(fortran, bool) and isinstance(data, bytes)
                and len(data) == math.prod(shape) * dtype.itemsize):
            size = len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__
            raise _refuse(f'a numpy array state of shape {_summary(shape, 40)} and dtype {dtype} '
                          f'with {size} bytes of data',
                          'states holding exactly the bytes their shape needs')
        self.__dict__['_state_set'] = True
        np.ndarray.__setstate__(self, (1, shape, dtype, fortran, data))

    def __reduce_ex__(self, protocol):
        return self.view(np.ndarray).__reduce_ex__(protocol)

    def __reduce__(self):
        return self.view(np.ndarray).__reduce__()


def reconstruct_array(subtype: Any, shape: Any, typecode: Any) -> LoadedArray:
    """``numpy.core.multiarray._reconstruct`` of an array pickle: an empty :class:`LoadedArray`
    for its state to fill."""
    if subtype is not NDARRAY_NAME or shape != (0, ) or typecode not in (b'b', 'b'):
        raise _refuse(f'_reconstruct({_summary(subtype, 40)}, {_summary(shape, 40)}, '
                      f'{_summary(typecode, 20)})', 'plain numpy arrays')
    return np.ndarray.__new__(LoadedArray, (0, ), np.uint8)


def numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    """``numpy.core.multiarray.scalar`` of a scalar pickle: a numeric scalar from its bytes."""
    dtype = checked_dtype(dtype)
    if not (isinstance(data, bytes) and len(data) == dtype.itemsize):
        raise _refuse(f'a numpy {dtype} scalar from {_summary(data, 40)}',
                      f'scalars from exactly their {dtype.itemsize} bytes')
    return multiarray.scalar(dtype, data)


def empty_bytes(*args: Any) -> bytes:
    """``builtins.bytes()``: how pickle protocol 2 writes ``b''`` (an empty array's data)."""
    if args:
        raise _refuse(f'bytes{_summary(args, 40)}', "empty bytes (bytes())")
    return b''


def numpy_safe_globals() -> List[Tuple[Any, str]]:
    """``(stand-in, pickle name)`` entries for :func:`torch.serialization.add_safe_globals`."""
    entries = [(NDARRAY_NAME, 'numpy.ndarray'), (PickledDtype, 'numpy.dtype'),
               (empty_bytes, 'builtins.bytes'),
               (LoadedArray, f'{LoadedArray.__module__}.{LoadedArray.__qualname__}')]
    for module in _MULTIARRAY_MODULES:
        entries += [(reconstruct_array, f'{module}._reconstruct'),
                    (numpy_scalar, f'{module}.scalar')]
    return entries
