# Copyright (c) mmaffseg contributors. All rights reserved.
"""What made an output folder, recorded beside it and checked before every reuse.

A tool that writes a folder (pseudo labels, a parameter search, a work dir, a benchmark run)
describes each *stage* of its output by the inputs that change its result: checkpoint files by
the sha256 of their contents (:func:`file_sha256`, never their path or mtime), settings
flattened to dotted keys, lists (e.g. of images) by a digest, and the stages it is computed
from. :class:`Provenance` keeps these in ``<folder>/provenance.json`` (written atomically) and,
on a rerun, compares them with what is there:

* a stage whose recorded inputs equal the new ones is reused;
* a stage whose inputs changed, or whose files exist without a record (an older version, by
  hand), while it has outputs on disk, is a mismatch: :meth:`Provenance.check` raises
  :class:`ProvenanceError` naming the folder, the stage and each changed input (old -> new)
  before any work, unless the caller asked to recompute (``--overwrite``), in which case it
  returns the stages to clear. A stage inherits its sources' inputs, so a new CAM checkpoint
  changes every stage computed from the CAMs, while a new random-walk setting leaves the CAMs'
  record alone.

Hashing reads a file once; the digest is cached by (real path, size, mtime_ns, device, inode,
ctime_ns) in memory and in ``$MMAFFSEG_CACHE_DIR/sha256.json`` (default ``~/.cache/mmaffseg``),
so a rerun does not read a large checkpoint again unless it changed. The inode change time is
part of the key because a file rewritten in place with its size and mtime restored
(``touch -r``) keeps both; no call sets the ctime back.
"""
import errno
import hashlib
import json
import os
import os.path as osp
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..version import __version__
from .atomic_io import atomic_write_bytes
from .config_errors import OutputDirError

RECORD_NAME = 'provenance.json'
RECORD_FORMAT = 1
CACHE_ENV = 'MMAFFSEG_CACHE_DIR'
_CHUNK = 1 << 20
_memory_cache: Dict[str, str] = {}


class ProvenanceError(OutputDirError):
    """An output folder holds results made from other inputs than the ones given now."""


def _cache_file() -> str:
    root = os.environ.get(CACHE_ENV) or osp.join(osp.expanduser('~'), '.cache', 'mmaffseg')
    return osp.join(root, 'sha256.json')


def _read_disk_cache() -> Dict[str, str]:
    try:
        with open(_cache_file()) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def stat_key(path: str) -> str:
    """What identifies a version of a file without reading it: ``'<real path>|<size>|
    <mtime_ns>|<device>|<inode>|<ctime_ns>'``. The ctime changes on every write, rename or
    ``touch -r`` (which sets the size and mtime back, not the ctime)."""
    real = osp.realpath(path)
    st = os.stat(real)
    return (f'{real}|{st.st_size}|{st.st_mtime_ns}|{st.st_dev}|{st.st_ino}|'
            f'{st.st_ctime_ns}')


def content_sha256(path: str) -> str:
    """``'sha256:<hex>'`` of a file's contents, read once (no cache)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(_CHUNK), b''):
            h.update(block)
    return f'sha256:{h.hexdigest()}'


def files_sha256(paths: Sequence[str]) -> Dict[str, str]:
    """:func:`file_sha256` of many files (e.g. a dataset's images), reading and writing the disk
    cache once: a file is read only when its :func:`stat_key` is not cached.

    Args:
        paths (Sequence[str]): Existing files.

    Returns:
        dict: Path -> ``'sha256:<hex>'``.
    """
    keys = {path: stat_key(path) for path in paths}
    todo = [path for path, key in keys.items() if key not in _memory_cache]
    if todo:
        disk = _read_disk_cache()
        new = {}
        for path in todo:
            digest = disk.get(keys[path])
            if not (isinstance(digest, str) and digest.startswith('sha256:')):
                digest = new[keys[path]] = content_sha256(path)
            _memory_cache[keys[path]] = digest
        if new:
            # keep only entries whose file is unchanged, so the cache does not grow without bound
            disk = {k: v for k, v in disk.items() if _still_current(k)}
            disk.update(new)
            try:
                atomic_write_bytes(_cache_file(), json.dumps(disk, indent=0).encode())
            except OSError:
                pass  # a read-only home only costs a re-hash next time
    return {path: _memory_cache[keys[path]] for path in paths}


def file_sha256(path: str) -> str:
    """``'sha256:<hex>'`` of a file's contents, cached by :func:`stat_key` (real path, size,
    mtime_ns, device, inode, ctime_ns).

    Args:
        path (str): The file.

    Returns:
        str: The digest, e.g. ``'sha256:9f86d0...'``.
    """
    return files_sha256([path])[path]


def _still_current(key: str) -> bool:
    path = key.rsplit('|', 5)[0]  # keys of an older format (fewer fields) are dropped
    try:
        return stat_key(path) == key
    except OSError:
        return False


def digest_of(value: Any) -> str:
    """``'sha256:<hex>'`` of a JSON-able value (e.g. an image list), in a canonical form."""
    text = json.dumps(value, sort_keys=True, separators=(',', ':'), default=str)
    return f'sha256:{hashlib.sha256(text.encode()).hexdigest()}'


def flatten_settings(settings: Mapping, prefix: str = '') -> Dict[str, Any]:
    """Nested settings as dotted keys with JSON values (tuples become lists), e.g.
    ``{'crf': {'iters': 10}}`` -> ``{'crf.iters': 10}``."""
    out: Dict[str, Any] = {}
    for key, value in settings.items():
        name = f'{prefix}{key}'
        if isinstance(value, Mapping):
            out.update(flatten_settings(value, f'{name}.'))
        else:
            out[name] = json.loads(json.dumps(value, default=str))
    return out


def _short(value: Any, width: int = 40) -> str:
    text = json.dumps(value, default=str)
    if isinstance(value, str) and value.startswith('sha256:'):
        text = value[:19]  # sha256: + 12 hex digits
    return text if len(text) <= width else text[:width - 3] + '...'


def _first_difference(key: str, old: Any, new: Any) -> Tuple[str, Any, Any]:
    """Where two JSON values first differ, as a dotted key: a list of dicts (a pipeline) is
    compared element by element, so a changed setting in it is named, not the whole list
    (whose shortened forms can read the same)."""
    while True:
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            index = next(i for i, (a, b) in enumerate(zip(old, new)) if a != b)
            key, old, new = f'{key}.{index}', old[index], new[index]
        elif isinstance(old, dict) and isinstance(new, dict):
            sub = next(k for k in sorted(set(old) | set(new))
                       if old.get(k, '<absent>') != new.get(k, '<absent>'))
            key, old, new = f'{key}.{sub}', old.get(sub, '<absent>'), new.get(sub, '<absent>')
        else:
            return key, old, new


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 4) -> str:
    """``'key: old -> new'`` for every input that differs, at most ``limit`` of them."""
    keys = sorted(set(old) | set(new))
    changed = [k for k in keys if old.get(k, '<absent>') != new.get(k, '<absent>')]
    parts = []
    for k in changed[:limit]:
        name, a, b = _first_difference(k, old.get(k, '<absent>'), new.get(k, '<absent>'))
        parts.append(f'{name}: {_short(a)} -> {_short(b)}')
    if len(changed) > limit:
        parts.append(f'and {len(changed) - limit} more')
    return '; '.join(parts)


class Provenance:
    """The provenance record of one output folder, stage by stage.

    Args:
        folder (str): The output folder; the record is ``folder/provenance.json``.
        argument (str): The argument or setting that names the folder, for messages
            (e.g. ``'--out-dir'``).
        tool (str): What writes the folder (e.g. ``'make_pseudo_labels'``), recorded.
        overwrite_hint (str): How the user asks to recompute mismatching stages, for the
            message. Default: ``'--overwrite'``.
    """

    def __init__(self, folder: str, argument: str, tool: str,
                 overwrite_hint: str = '--overwrite') -> None:
        self.folder = folder
        self.argument = argument
        self.tool = tool
        self.overwrite_hint = overwrite_hint
        self.path = osp.join(folder, RECORD_NAME)
        self._own: Dict[str, Dict[str, Any]] = {}
        self._sources: Dict[str, List[str]] = {}

    def stage(self, name: str, inputs: Mapping[str, Any],
              sources: Sequence[str] = ()) -> 'Provenance':
        """Declare a stage, the inputs that change its result and the stages it is computed
        from (declared before it). Nested dicts in ``inputs`` are flattened."""
        unknown = [s for s in sources if s not in self._own]
        if unknown:
            raise ValueError(f'stage {name!r}: sources {unknown} are not declared before it')
        self._own[name] = flatten_settings(inputs)
        self._sources[name] = list(sources)
        return self

    def inputs(self, name: str) -> Dict[str, Any]:
        """A stage's inputs with those of its sources (prefixed ``<source>/``) and the
        mmaffseg version: everything its result depends on."""
        out = {'mmaffseg_version': __version__}
        for source in self._sources[name]:
            for key, value in self.inputs(source).items():
                out[key if key == 'mmaffseg_version' else f'{source}/{key}'] = value
        out.update(self._own[name])
        return out

    @property
    def stages(self) -> List[str]:
        return list(self._own)

    def recorded(self) -> Optional[Dict[str, Dict[str, Any]]]:
        """The stages' inputs recorded in the folder, or None when there is no record.

        Raises:
            ProvenanceError: The record exists but cannot be read.
        """
        try:
            with open(self.path) as f:
                data = json.load(f)
            stages = data['stages']
            if not isinstance(stages, dict):
                raise TypeError('stages is not a mapping')
            bad = [name for name, inputs in stages.items()
                   if not (inputs is None or isinstance(inputs, dict))]
            if bad:
                raise TypeError(f'the inputs of stage {bad[0]!r} are not a mapping')
            return stages
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ProvenanceError(
                errno.EINVAL, f'{self.argument}: the provenance record {self.path} cannot be '
                f'read ({type(e).__name__}: {e}); rerun with {self.overwrite_hint} to recompute '
                f'everything, or choose another {self.argument}') from None

    def check(self, stages_with_outputs: Iterable[str], overwrite: bool = False) -> List[str]:
        """Compare the declared stages with the record, before any work.

        Args:
            stages_with_outputs (Iterable[str]): Declared stages that already have files in the
                folder (only those can be stale).
            overwrite (bool): Recompute mismatching stages instead of stopping.

        Returns:
            list[str]: The stages with outputs that do not match (to clear before writing);
            empty when everything there can be reused.

        Raises:
            ProvenanceError: A stage with outputs does not match, or the record cannot be
                read, and ``overwrite`` is False.
        """
        with_outputs = set(stages_with_outputs)  # any iterable, read once
        try:
            recorded = self.recorded() or {}
        except ProvenanceError:
            if not overwrite:
                raise
            recorded = {}  # unreadable: every stage with outputs is recomputed
        stale, reasons = [], []
        for name in self.stages:
            if name not in with_outputs:
                continue
            new = self.inputs(name)
            old = recorded.get(name)
            if old is None:
                stale.append(name)
                reasons.append(f"'{name}' has files but no provenance record (made by an "
                               'older version or by hand)')
            elif old != new:
                stale.append(name)
                changes = describe_changes(old, new)
                reasons.append(f"'{name}' was made from other inputs ({changes})")
        if stale and not overwrite:
            raise ProvenanceError(
                errno.EEXIST, f'{self.argument}: the folder {self.folder} holds results of other '
                f'inputs: stage {"; stage ".join(reasons)}. Rerun with {self.overwrite_hint} to '
                f'recompute {", ".join(stale)}, or choose another {self.argument}')
        return stale

    def write(self) -> None:
        """Record the declared stages (keeping recorded stages not declared now), atomically.

        An unreadable record is replaced: the stages not declared now lose their entries, so
        their files count as made without a record (a mismatch) on the next check.
        """
        try:
            stages = dict(self.recorded() or {})
        except ProvenanceError:
            stages = {}
        stages.update({name: self.inputs(name) for name in self.stages})
        record = dict(format=RECORD_FORMAT, tool=self.tool, mmaffseg_version=__version__,
                      stages=stages)
        try:
            atomic_write_bytes(self.path, json.dumps(record, indent=1, sort_keys=True).encode())
        except OSError as e:  # e.g. a folder of that name, a read-only folder, a full disk
            raise ProvenanceError(
                e.errno or errno.EIO, f'{self.argument}: the provenance record {self.path} '
                f'cannot be written ({type(e).__name__}: {e.strerror or e}); fix the folder or '
                f'choose another {self.argument}') from None
