# Copyright (c) mmaffseg contributors. All rights reserved.
"""Read PSA's official image-level labels (``voc12/cls_labels.npy``) without running code.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018 (official code: jiwoon-ahn/psa). The official
labels are a dict image name -> 20-entry multi-hot float32 vector, derived from the PASCAL VOC
XML annotations and saved with ``np.save``, i.e. as a pickle. Unpickling an untrusted file can
run arbitrary code, so :class:`~mmaffseg.datasets.LoadImageLevelLabels` never does it; this
module is the one explicit conversion step (``tools/dataset_converters/psa_cls_labels.py``)
to a ``.json`` / ``.npz`` file that needs no unpickling.

By default the pickle is read by :class:`RestrictedNumpyUnpickler`, which allows only what
``np.save`` writes for a dict of arrays and refuses every other global, so a payload in the file
is not executed. numpy's own names trust the state in the file (a dtype given object flags reads
bytes of the file as object pointers: a crash; an array of zero strides declares gigabytes over
a few bytes; an array whose state is set twice frees data another array still views), so they
resolve to the checkpoint loader's stand-ins (:mod:`mmaffseg.utils.numpy_stand_ins`): plain
numeric arrays with exactly the bytes their shape needs, their state set once, plus the one
0-d object array that holds the dict. ``trust=True`` unpickles fully
(``np.load(allow_pickle=True)``): only for files you trust.
"""
import pickle
from typing import Any, Dict

import numpy as np

from ..utils.loaded_arrays import UnsafeContent, check_loaded
from ..utils.numpy_stand_ins import NDARRAY_NAME, LoadedArray, PickledDtype, reconstruct_array
from .image_level_labels import _checked_vector

# the state numpy pickles for dtype('O'): (version, byte order, subarray, names, fields,
# element size, alignment, flags)
_OBJECT_DTYPE_STATE = (3, '|', None, None, None, -1, -1, 63)


class UntrustedPickleError(pickle.UnpicklingError):
    """The pickle needs a global that :class:`RestrictedNumpyUnpickler` does not allow."""


class ObjectDtype:
    """``numpy.dtype('O8')`` of the label file: only the type of its outer 0-d object array."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "numpy.dtype('O8')"

    def __setstate__(self, state: Any) -> None:
        if state != _OBJECT_DTYPE_STATE:
            raise UntrustedPickleError(f'an object dtype with the state {state!r:.80}, not '
                                       'numpy\'s own')


class LabelFileArray(LoadedArray):
    """A numpy array of the label file: a plain numeric :class:`LoadedArray`, or the 0-d object
    array holding the dict (kept as :attr:`table`, never built as an object array)."""

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5
                and isinstance(state[2], ObjectDtype)):
            return super().__setstate__(state)
        version, shape, _, fortran, data = state
        if self.__dict__.get('_state_set') or not (
                version == 1 and shape == () and fortran is False and isinstance(data, list)
                and len(data) == 1 and isinstance(data[0], dict)):
            raise UntrustedPickleError('an object array other than the one holding the dict of '
                                       'labels')
        self.__dict__.update(_state_set=True, table=data[0])


def _dtype(code: Any = None, align: Any = False, copy: Any = True) -> Any:
    return ObjectDtype() if code == 'O8' and not align else PickledDtype(code, align, copy)


def _reconstruct(*args: Any) -> LabelFileArray:
    reconstruct_array(*args)  # checks the arguments: numpy.ndarray, (0,), b'b'
    return np.ndarray.__new__(LabelFileArray, (0, ), np.uint8)


def _latin1_encode(text: Any, encoding: Any = 'utf-8') -> bytes:
    """``_codecs.encode`` as pickle protocol 2 writes bytes: ``encode(str, 'latin1')``."""
    if not (isinstance(text, str) and encoding in ('latin1', 'latin-1')):
        raise UntrustedPickleError(f'_codecs.encode(..., {encoding!r:.20}): only latin1 '
                                   'encodings of bytes are allowed')
    return text.encode('latin-1')


#: The factory of the object that each (module, name) of a pickle resolves to, for everything
#: np.save writes for a dict of name -> float32 ndarray (numpy's names as stand-ins).
ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): lambda: _reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): lambda: _reconstruct,
    ('numpy', 'ndarray'): lambda: NDARRAY_NAME,
    ('numpy', 'dtype'): lambda: _dtype,
    ('_codecs', 'encode'): lambda: _latin1_encode,
}


class RestrictedNumpyUnpickler(pickle._Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` (numpy arrays of plain dtypes,
    dicts, strings, numbers) and sets state (BUILD) only on the arrays and dtypes they make.

    Python's pure-Python unpickler, so that BUILD can be restricted: the C one would set the
    attributes of any object, e.g. a class the pickle names."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str):
        factory = ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise UntrustedPickleError(
                f'the pickle refers to {module}.{name}, which a label file of numpy arrays does '
                'not need')
        return factory()

    def load_build(self) -> None:
        if not isinstance(self.stack[-2], (LabelFileArray, PickledDtype, ObjectDtype)):
            raise UntrustedPickleError(f'the pickle sets the state of a '
                                       f'{type(self.stack[-2]).__name__}, which only numpy '
                                       'arrays and dtypes need')
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def _load_npy_restricted(path: str):
    with open(path, 'rb') as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f'{path}: unsupported .npy format version {version}')
        if dtype != np.dtype(object):
            raise ValueError(f'{path} holds a plain {dtype} array of shape {shape}, not a '
                             'dict of labels')
        try:
            obj = RestrictedNumpyUnpickler(f, encoding='latin1').load()
        except UntrustedPickleError:
            raise
        except pickle.UnpicklingError as e:  # a stand-in refused numpy state
            raise UntrustedPickleError(str(e).replace('when loading a checkpoint',
                                                      'in a label file')) from None
        except (EOFError, TypeError, AttributeError, IndexError, KeyError, ValueError,
                MemoryError, RecursionError) as e:
            raise ValueError(f'{path} is not a readable pickled label file '
                             f'({type(e).__name__}: {str(e)[:200]})') from None
    if isinstance(obj, LabelFileArray) and 'table' in obj.__dict__:
        obj = obj.__dict__['table']
    try:
        return check_loaded(obj)  # the arrays as plain ndarrays, each checked
    except UnsafeContent as e:
        raise UntrustedPickleError(str(e)) from None
    except RecursionError:
        raise ValueError(f'{path}: its containers nest deeper than Python\'s recursion '
                         'limit') from None


def read_psa_cls_labels(path: str, num_classes: int = 20,
                        trust: bool = False) -> Dict[str, np.ndarray]:
    """Read a pickled ``.npy`` dict image name -> multi-hot vector (PSA's ``cls_labels.npy``).

    Args:
        path (str): The ``.npy`` file.
        num_classes (int): Length of every vector. Default: 20 (VOC).
        trust (bool): Unpickle fully (runs any code the file carries) instead of the restricted
            reader. Default: False.

    Returns:
        dict[str, np.ndarray]: image name -> ``(num_classes,)`` float32 multi-hot labels.

    Raises:
        UntrustedPickleError: The file needs more than numpy arrays (restricted reader).
        ValueError: The file does not hold a dict of ``num_classes``-entry vectors.
    """
    if trust:
        obj = np.load(path, allow_pickle=True)
    else:
        try:
            obj = _load_npy_restricted(path)
        except UntrustedPickleError as e:
            raise UntrustedPickleError(
                f'{path}: {e}. It is not a plain label file (possibly a malicious one). Only if '
                'you trust its origin, convert it with --trust (full unpickling).') from None
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise ValueError(f'{path} holds a {type(obj).__name__}, expected a dict image name -> '
                         'multi-hot vector (as PSA\'s cls_labels.npy)')
    return {str(k): _checked_vector(v, num_classes, str(k), path) for k, v in obj.items()}
