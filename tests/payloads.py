# Copyright (c) mmaffseg contributors. All rights reserved.
"""Malicious checkpoints (real pickled payloads) and a local http server to serve them."""
import contextlib
import copyreg
import functools
import http.server
import os
import threading
import zipfile
from typing import Iterator

import numpy as np
import torch

try:
    from numpy._core import multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray


class FilePayload:
    """Unpickling it creates ``marker`` (what a malicious checkpoint could do instead)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, 'w')


class ToFilePayload:
    """Reaches ``numpy.ndarray.tofile`` through ``getattr`` and writes ``marker`` with it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        # a bound builtin method pickles as getattr(array, 'tofile')
        return np.zeros(1).tofile, (self.marker, )


class _ObjectDtype:
    """``numpy.dtype('O')`` without its state (so no BUILD of an object dtype is needed)."""

    def __reduce__(self):
        return np.dtype, ('O', False, True)


class _ObjectPointerDtype:
    """A copied float64 dtype whose state gives it one object field and the has-object flag."""

    def __reduce__(self):
        return np.dtype, ('f8', False, True), (3, '|', None, ('x', ), {'x': (_ObjectDtype(), 0)},
                                               8, 1, 1)


class ObjectPointerArray:
    """An array of :class:`_ObjectPointerDtype` holding 8 bytes of the file: numpy takes them
    for a pointer to a Python object, so copying the array (as ``MessageHub.load_state_dict``
    does) crashes the process. Every global it names is one mmengine's checkpoints use."""

    def __reduce__(self):
        return multiarray._reconstruct, (np.ndarray, (0, ), b'b'), (1, (1, ),
                                                                     _ObjectPointerDtype(),
                                                                     False, b'\x41' * 8)


class ZeroStrideArray:
    """``numpy.ndarray((2**28,), float64, buffer=8 bytes, strides=(0,))``: 8 bytes in the file,
    2 GiB once copied."""

    __class__ = property(lambda self: np.ndarray)  # lets pickle write NEWOBJ numpy.ndarray

    def __reduce__(self):
        return copyreg.__newobj__, (np.ndarray, (1 << 28, ), np.dtype('f8'), b'\0' * 8, 0, (0, ))


def zero_stride_tensor() -> torch.Tensor:
    """One float64 expanded to 2**28 elements: 8 bytes saved, 2 GiB once copied."""
    return torch.zeros(1, dtype=torch.float64).expand(1 << 28)


def save_zip_bomb(path: str, inflated: int = 64 << 20) -> None:
    """A valid checkpoint whose ``data.pkl`` is deflated with ``inflated`` bytes of padding
    after the pickle (about 1000 times smaller on disk); it loads once decompressed."""
    plain = path + '.plain'
    torch.save(dict(state_dict=dict(w=torch.ones(1))), plain)
    block = bytes(1 << 20)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, 'w') as dst:
        for info in src.infolist():
            data = src.read(info)
            if not info.filename.endswith('data.pkl'):
                dst.writestr(info, data)
                continue
            member = zipfile.ZipInfo(info.filename)
            member.compress_type = zipfile.ZIP_DEFLATED
            with dst.open(member, 'w', force_zip64=True) as f:
                f.write(data)
                for start in range(0, inflated, len(block)):
                    f.write(block[:inflated - start])
    os.remove(plain)


def save_payload(path: str, payload) -> None:
    """A checkpoint-shaped file (a state dict) carrying ``payload`` in its meta."""
    torch.save(dict(state_dict=dict(w=torch.ones(1)), meta=dict(note=payload)), path)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve_folder(folder: str) -> Iterator[str]:
    """Serve ``folder`` over http on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=folder)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
