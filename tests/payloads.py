# Copyright (c) mmaffseg contributors. All rights reserved.
"""Malicious checkpoints (real pickled payloads) and a local http server to serve them."""
import contextlib
import functools
import http.server
import threading
from typing import Iterator

import numpy as np
import torch


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
