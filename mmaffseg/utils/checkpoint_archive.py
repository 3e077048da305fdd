# Copyright (c) mmaffseg contributors. All rights reserved.
"""The zip container of a torch checkpoint: its declared size and its CRC-32s, checked cheaply.

``torch.save`` writes a zip archive of stored (uncompressed) members: the pickle and one member
per tensor storage. A zip member may also be deflated, and ``torch.load`` reads each member
whole into memory: a 1 MB file can declare a gigabyte pickle. :func:`inflation_problem` reads
only the archive's directory and refuses an archive whose members declare more than
:data:`MAX_INFLATION_ENV` times the file's size (default 10; stored members count once) or more
than :data:`MAX_BYTES_ENV` bytes in all (default 64 GiB), before anything is decompressed. zip
readers (Python's and torch's) stop at a member's declared size, so the declared sizes bound
what loading allocates. A file that torch reads as a zip archive (it begins with a zip local
header) but whose directory Python's zipfile cannot parse is refused too: torch's
reader is more lenient (it skips e.g. a corrupt extra field), so its sizes would go unchecked.
:func:`damaged_member` checks the members' CRC-32s, which ``torch.load`` ignores.
:func:`content_bytes` is the most data a checkpoint file can hold.

Each function takes a path, or an open binary file (or ``BytesIO``), which it reads from the
start and leaves at the start: :func:`~.safe_load.load_checkpoint_file` checks and loads one
open file, so a file renamed over the path in between is not the one loaded.
"""
import io
import os
import os.path as osp
import zipfile
from typing import BinaryIO, Optional, Tuple, Union

MAX_INFLATION_ENV = 'MMAFFSEG_CHECKPOINT_MAX_INFLATION'
MAX_BYTES_ENV = 'MMAFFSEG_CHECKPOINT_MAX_BYTES'
DEFAULT_MAX_INFLATION = 10.0
DEFAULT_MAX_BYTES = 64 << 30

File = Union[str, io.BytesIO, BinaryIO]
_ZIP_LOCAL_HEADER = b'PK\x03\x04'  # what torch.load takes for a zip archive


def _limit(env: str, default: float) -> float:
    """The positive number in environment variable ``env``, else ``default``.

    Raises:
        ValueError: The variable is set to something else (the message names it).
    """
    text = os.environ.get(env, '').strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f'cannot be checked: {env}={text!r} is not a positive number (unset '
                         f'it for the default, {default:g})')
    return value


def format_size(n: float) -> str:
    """``n`` bytes for a message: ``'512 bytes'``, ``'2.0 GiB'``."""
    for unit in ('bytes', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return f'{n:.0f} {unit}' if unit == 'bytes' else f'{n:.1f} {unit}'
        n /= 1024
    return str(n)


def _file_size(file: File) -> int:
    if isinstance(file, str):
        return osp.getsize(file)
    if isinstance(file, io.BytesIO):
        return file.getbuffer().nbytes
    return os.fstat(file.fileno()).st_size


def _starts_as_zip(file: File) -> bool:
    if isinstance(file, str):
        with open(file, 'rb') as f:
            return f.read(4) == _ZIP_LOCAL_HEADER
    file.seek(0)
    try:
        return file.read(4) == _ZIP_LOCAL_HEADER
    finally:
        file.seek(0)


def _declared(file: File) -> Tuple[Optional[int], Optional[str]]:
    """(the summed size its zip directory declares, None) for what torch reads as a zip archive,
    (None, None) for another file, (None, why) for such an archive whose directory is malformed."""
    try:
        if not _starts_as_zip(file):  # torch.load reads it in the legacy format
            return None, None
        with zipfile.ZipFile(file) as archive:
            return sum(info.file_size for info in archive.infolist()), None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        detail = f'{type(e).__name__}: {e}'.splitlines()[0][:200]
        return None, ('is not a readable PyTorch checkpoint (truncated, corrupt or another kind '
                      f'of file): its zip directory cannot be read ({detail}); refused before '
                      'decompressing')
    finally:
        if not isinstance(file, str):
            file.seek(0)


def content_bytes(file: File) -> int:
    """The most data ``file`` holds: its size, or what its zip members declare if more."""
    declared, _ = _declared(file)
    return max(_file_size(file), declared or 0)


def inflation_problem(file: File) -> Optional[str]:
    """Why a zip checkpoint's members would decompress to too much, else None.

    Reads the archive's central directory only. Files that are not zip archives (torch's
    legacy format, garbage) are left to ``torch.load``; a file that torch reads as a zip archive
    (it begins with a local header) but whose directory is malformed is refused.

    Args:
        file (str | file | BytesIO): The checkpoint file, open or by path, or its bytes.

    Returns:
        str | None: The reason, completing "checkpoint <file> ...".

    Raises:
        ValueError: A limit's environment variable holds no positive number.
    """
    declared, malformed = _declared(file)
    if malformed is not None:
        return malformed
    if declared is None:
        return None
    on_disk = _file_size(file)
    ratio = _limit(MAX_INFLATION_ENV, DEFAULT_MAX_INFLATION)
    absolute = _limit(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)
    if declared > ratio * on_disk:
        return (f'declares {format_size(declared)} of content, '
                f'{declared / max(on_disk, 1):.0f} times its {format_size(on_disk)} on disk '
                f'(at most {ratio:g} times are allowed: a zip bomb?); refused before '
                f'decompressing. If it is genuine, raise the limit with {MAX_INFLATION_ENV}')
    if declared > absolute:
        return (f'declares {format_size(declared)} of content, more than the '
                f'{format_size(absolute)} allowed; refused before reading. If it is genuine, '
                f'raise the limit with {MAX_BYTES_ENV} (in bytes)')
    return None


def damaged_member(file: File) -> Optional[str]:
    """The first member of a torch zip checkpoint whose CRC-32 does not match, else None.

    ``torch.load`` does not check the CRCs that ``torch.save`` writes, so a flipped byte in the
    tensor data would load as a silently different weight. Members stored with a CRC of 0
    (written with ``torch.serialization.set_crc32_options(False)``) are not checked; files that
    are not zip archives (legacy format) are left to ``torch.load``.
    """
    try:
        if not zipfile.is_zipfile(file):
            return None
        with zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                if info.CRC == 0:
                    continue
                try:
                    with archive.open(info) as member:
                        while member.read(1 << 24):
                            pass
                except zipfile.BadZipFile:
                    return info.filename
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None  # unreadable archives: torch.load names the problem
    finally:
        if not isinstance(file, str):
            file.seek(0)
    return None
