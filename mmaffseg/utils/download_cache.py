# Copyright (c) mmaffseg contributors. All rights reserved.
"""torch hub's checkpoint cache, keyed by the whole URL and bound to the bytes fetched for it.

A download of ``URL`` is cached in ``$TORCH_HOME/hub/checkpoints`` as
``<first 16 hex digits of the URL's SHA-256>-<the URL's file name>``, beside a record
``<that name>.json`` holding the URL and the SHA-256 of the bytes fetched for it. A cached file
is reused only for the URL in its record, so two URLs ending in the same file name never share
a file (mmengine's and torch hub's own loaders name the file by the URL's file name alone and
reuse whatever has that name). Naming a URL in ``MMAFFSEG_TRUSTED_CHECKPOINTS`` trusts exactly
the bytes fetched for it: :func:`cached_download` with ``verify=True`` hashes the cached file
and fetches it again unless it still holds those bytes, and the loader trusts the file only if
the bytes it loads (read once into memory) have the SHA-256 in the record
(:func:`recorded_sha256`), so a file swapped after the check is loaded safely, not trusted.
:func:`forget` removes a download that was refused, so it does not stay in the cache.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Optional
from urllib.parse import urlparse

from mmengine.logging import print_log

from .atomic_io import atomic_write_bytes
from .safe_load import CheckpointError, file_sha256

RECORD_SUFFIX = '.json'


def cache_path(url: str, model_dir: Optional[str] = None) -> str:
    """Where ``url``'s download is cached (see the module docstring)."""
    from torch.hub import get_dir
    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    name = osp.basename(urlparse(url).path) or 'checkpoint'
    return osp.join(model_dir, f'{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}')


def _record(path: str) -> Optional[dict]:
    try:
        with open(path + RECORD_SUFFIX) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def cached_download(url: str, model_dir: Optional[str] = None, progress: bool = False,
                    verify: bool = False) -> str:
    """Download ``url`` into the cache unless it is there, and return the cached file.

    Args:
        url (str): An ``http(s)://`` URL.
        model_dir (str, optional): The cache folder. Defaults to torch hub's
            ``checkpoints`` folder.
        progress (bool): Show torch hub's progress bar.
        verify (bool): Hash a cached file and fetch it again unless it still holds the bytes
            fetched for ``url`` (for a trusted URL: one more read of the file).

    Returns:
        str: The cached file.

    Raises:
        CheckpointError: The download failed.
    """
    from torch.hub import download_url_to_file
    path = cache_path(url, model_dir)
    record = _record(path)
    if osp.isfile(path) and record is not None and record.get('url') == url:
        if not verify or file_sha256(path) == record.get('sha256'):
            return path
        print_log(f'{path} no longer holds the bytes downloaded from {url}: downloading it '
                  'again', logger='current', level=30)
    forget(path)
    os.makedirs(osp.dirname(path), exist_ok=True)
    print_log(f'Downloading {url} to {path}', logger='current')
    try:
        download_url_to_file(url, path, progress=progress)
    except OSError as e:  # URLError and HTTPError are OSErrors
        raise CheckpointError(url, f'could not be downloaded: {e}') from None
    record = dict(url=url, sha256=file_sha256(path))
    atomic_write_bytes(path + RECORD_SUFFIX, json.dumps(record).encode())
    return path


def recorded_sha256(path: str) -> Optional[str]:
    """The SHA-256 recorded for the bytes downloaded to ``path``, or None."""
    record = _record(path)
    digest = record.get('sha256') if record is not None else None
    return digest if isinstance(digest, str) else None


def forget(path: str) -> None:
    """Remove a cached download and its record (those that exist)."""
    for name in (path, path + RECORD_SUFFIX):
        try:
            os.remove(name)
        except FileNotFoundError:
            pass
