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
``np.save`` writes for a dict of arrays (numpy's ndarray reconstruction, ``numpy.dtype`` and
``_codecs.encode``) and refuses every other global, so a payload in the file is not executed.
``trust=True`` unpickles fully (``np.load(allow_pickle=True)``): only for files you trust.
"""
import codecs
import pickle
from typing import Dict

import numpy as np

from .image_level_labels import _checked_vector


def _reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct as fn
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


#: (module, name) -> object: everything np.save writes for a dict name -> float32 ndarray.
ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy', 'ndarray'): lambda: np.ndarray,
    ('numpy', 'dtype'): lambda: np.dtype,
    ('_codecs', 'encode'): lambda: codecs.encode,
}


class UntrustedPickleError(pickle.UnpicklingError):
    """The pickle needs a global that :class:`RestrictedNumpyUnpickler` does not allow."""


class RestrictedNumpyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` (numpy arrays of plain dtypes,
    dicts, strings, numbers)."""

    def find_class(self, module: str, name: str):
        factory = ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise UntrustedPickleError(
                f'the pickle refers to {module}.{name}, which a label file of numpy arrays does '
                'not need')
        return factory()


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
        return RestrictedNumpyUnpickler(f, encoding='latin1').load()


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
