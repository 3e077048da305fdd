# Copyright (c) mmaffseg contributors. All rights reserved.
"""The tensors and arrays of a weights-only loaded checkpoint, checked against their buffers.

A pickle can declare a tensor of 2**28 elements over 8 bytes of data (zero strides, as
``torch.save`` writes an ``expand``-ed tensor): loading takes 8 bytes, and the first copy
(resuming deep-copies the message hub) allocates 2 GiB. :func:`check_loaded` walks a loaded
checkpoint (containers, and the attributes a pickle set, e.g. a ``HistoryBuffer``'s histories)
and refuses any tensor or numpy array declaring more elements than its buffer holds, or a numpy
array or scalar whose dtype is not plain numeric. Tensors hold no more data, all storages
counted once, than the file does (``data_bytes``): a pickle can build tensors and storages of
its own (``torch.FloatTensor(n)``, ``torch.UntypedStorage(n)``, a legacy-format storage whose
data is never read), allocated uninitialised at any size; tensors on the ``meta`` device hold no
data at all. It also turns the
:class:`~.numpy_stand_ins.LoadedArray` objects into plain ``ndarray`` views and the
:class:`~.numpy_stand_ins.PickledDtype` objects into their dtypes. The walk touches no data:
about a millisecond for a checkpoint of a few hundred tensors.
"""
import pickle
import types
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch

from .checkpoint_archive import format_size
from .numpy_stand_ins import GlobalName, PickledDtype, checked_dtype


class UnsafeContent(ValueError):
    """A loaded tensor or array that safe loading refuses (the message says where and why)."""


_ATOMS = (type(None), bool, int, float, complex, str, bytes, bytearray, torch.dtype,
          torch.device, torch.layout, torch.memory_format, torch.qscheme)
_OPAQUE = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
           types.ModuleType, GlobalName)
Where = Optional[Tuple[Any, Any]]  # (parent, key) links, formatted only for a message


def _where(where: Where) -> str:
    keys = []
    while where is not None:
        where, key = where
        keys.append(key)
    text = ''.join(f'.{k}' if isinstance(k, str) and k.isidentifier() else f'[{k!r}]'
                   for k in reversed(keys))
    return text.lstrip('.') or 'the top level'


def _check_tensor(tensor: torch.Tensor, where: Where, account: Callable) -> None:
    if tensor.device.type == 'meta':
        raise UnsafeContent(f'a tensor at {_where(where)} (shape {list(tensor.shape)}) has no data '
                            '(it is on the meta device)')
    if tensor.layout != torch.strided or tensor.is_nested:
        return
    try:
        storage = tensor.untyped_storage()
    except (RuntimeError, NotImplementedError, TypeError):  # wrapper subclasses: no storage
        return
    account(storage, where)
    if tensor.numel() == 0:
        return
    buffer = storage.nbytes()
    item = tensor.element_size()
    declared = tensor.numel() * item
    if declared > buffer - tensor.storage_offset() * item:
        raise UnsafeContent(
            f'a tensor at {_where(where)} declares {tensor.numel()} {tensor.dtype} elements '
            f'({format_size(declared)}, shape {list(tensor.shape)}, strides '
            f'{list(tensor.stride())}) over {format_size(buffer)} of data, which copying it '
            'would allocate')


def _check_array(array: np.ndarray, where: Where) -> np.ndarray:
    try:
        checked_dtype(array.dtype)
    except pickle.UnpicklingError:
        raise UnsafeContent(f'a numpy array at {_where(where)} has dtype {array.dtype}, not a '
                            'plain numeric one') from None
    if array.size and not (array.flags.c_contiguous or array.flags.f_contiguous):
        raise UnsafeContent(
            f'a numpy array at {_where(where)} of shape {list(array.shape)} has strides '
            f'{list(array.strides)}, not those of its shape over {format_size(array.nbytes)} '
            'of data')
    return array if type(array) is np.ndarray else array.view(np.ndarray)


def _check_scalar(scalar: np.generic, where: Where) -> None:
    try:
        checked_dtype(scalar.dtype)
    except pickle.UnpicklingError:
        raise UnsafeContent(f'a numpy scalar at {_where(where)} has dtype {scalar.dtype}, not a '
                            'plain numeric one') from None


class _Checker:
    """One walk of a loaded checkpoint (see :func:`check_loaded`)."""

    def __init__(self, data_bytes: Optional[int] = None) -> None:
        self.seen: Dict[int, Any] = {}  # id -> the object to use in its place
        self.data_bytes = data_bytes
        self.storages: Dict[int, int] = {}  # data pointer -> bytes
        self.held = 0

    def account(self, storage: torch.UntypedStorage, where: Where) -> None:
        """Count a storage's bytes once; refuse more than the file holds."""
        nbytes, pointer = storage.nbytes(), storage.data_ptr()
        if storage.device.type == 'meta' or not nbytes or pointer in self.storages:
            return
        self.storages[pointer] = nbytes
        self.held += nbytes
        if self.data_bytes is not None and self.held > self.data_bytes:
            raise UnsafeContent(
                f'its tensors hold {format_size(self.held)} of data up to the one at '
                f'{_where(where)}, more than the {format_size(self.data_bytes)} the file holds: '
                'a tensor or storage built by the pickle (e.g. torch.FloatTensor(n)), '
                'allocated without data from the file')

    def visit(self, obj: Any, where: Where) -> Any:
        if isinstance(obj, _ATOMS) or isinstance(obj, _OPAQUE):
            return obj
        key = id(obj)
        if key in self.seen:
            return self.seen[key]
        if isinstance(obj, torch.Tensor):
            self.seen[key] = obj
            _check_tensor(obj, where, self.account)
        elif isinstance(obj, (torch.UntypedStorage, torch.TypedStorage)):
            self.seen[key] = obj
            self.account(obj if isinstance(obj, torch.UntypedStorage) else obj.untyped(),
                         where)
            return obj
        elif isinstance(obj, np.ndarray):
            self.seen[key] = _check_array(obj, where)
            return self.seen[key]
        elif isinstance(obj, PickledDtype):
            try:
                self.seen[key] = obj.dtype
            except pickle.UnpicklingError as e:
                raise UnsafeContent(f'{_where(where)}: {e}') from None
            return self.seen[key]
        elif isinstance(obj, np.generic):
            self.seen[key] = obj
            _check_scalar(obj, where)
            return obj
        self.seen[key] = obj
        if isinstance(obj, dict):
            for k, v in list(obj.items()):
                new = self.visit(v, (where, k))
                if new is not v:
                    obj[k] = new
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                new = self.visit(v, (where, i))
                if new is not v:
                    obj[i] = new
        elif isinstance(obj, tuple):
            items = [self.visit(v, (where, i)) for i, v in enumerate(obj)]
            if type(obj) is tuple and any(a is not b for a, b in zip(items, obj)):
                self.seen[key] = tuple(items)
                return self.seen[key]
        elif isinstance(obj, (set, frozenset)):
            for v in obj:
                self.visit(v, (where, '<set item>'))
        self._visit_attributes(obj, where)
        return obj

    def _visit_attributes(self, obj: Any, where: Where) -> None:
        """Attributes a pickle set (a HistoryBuffer's histories, a state dict's metadata)."""
        attributes = getattr(obj, '__dict__', None)
        if not isinstance(attributes, dict):
            return
        for k, v in list(attributes.items()):
            new = self.visit(v, (where, k))
            if new is not v:
                setattr(obj, k, new)


def check_loaded(checkpoint: Any, data_bytes: Optional[int] = None) -> Any:
    """Check every tensor and numpy array of a weights-only loaded checkpoint.

    Args:
        checkpoint: What :func:`torch.load` returned.
        data_bytes (int, optional): The most data the file can hold (its size, or the declared
            size of a zip archive's members): all tensors' storages together may hold no more.
            Default: not checked.

    Returns:
        ``checkpoint``, its :class:`LoadedArray` objects replaced by plain ``ndarray`` views
        and its :class:`PickledDtype` objects by their dtypes (in place where containers are
        mutable).

    Raises:
        UnsafeContent: A tensor or array declaring more elements than its buffer holds (zero or
            overlapping strides), an array or scalar of a dtype other than plain numeric, a
            tensor on the meta device, or tensors holding more than ``data_bytes``.
        RecursionError: Containers nested deeper than Python's recursion limit.
    """
    return _Checker(data_bytes).visit(checkpoint, None)

