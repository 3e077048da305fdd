# Copyright (c) mmaffseg contributors. All rights reserved.
"""Image decoding for every mmaffseg loader: a pixel limit checked before decoding, and one
EXIF orientation policy.

**Pixel limit.** A PNG of a few hundred kilobytes can declare 30000x30000 pixels and decode to
gigabytes. :func:`decode_image` reads the image's size from its header (with Pillow, which
parses headers without decoding) and refuses an image above ``max_pixels`` before decoding it.
The default, :data:`DEFAULT_MAX_PIXELS`, is four Cityscapes frames (4 x 2048 x 1024 = 8.4 Mpx,
enough for 4K UHD); the environment variable ``MMAFFSEG_MAX_IMAGE_PIXELS`` changes it for every
loader of the process, a loader's ``max_pixels`` argument for that loader. The headers of the
formats OpenCV decodes and Pillow does not know are read here (Radiance HDR, whose run-length
coding makes a 2 MB file decode to 1 GB, PAM, colour PFM and OpenEXR); any other format Pillow
cannot read is decoded first and checked after (OpenCV's own limit, 2**30 pixels, still
applies).

**EXIF orientation is ignored.** Every image decodes to its stored pixel grid, the grid label
maps are drawn on (mmseg reads label maps with ``IMREAD_UNCHANGED``, which never rotates). mmcv's
``'color'`` and ``'grayscale'`` flags apply the orientation tag (``cv2.IMREAD_COLOR``, Pillow's
``exif_transpose``): a JPEG tagged "rotate 180" would decode upside down over its label map,
same shape and silently misaligned. :func:`decode_image` maps them to mmcv's
``'*_ignore_orientation'`` flags. TIFF is the exception to those flags: OpenCV's and Pillow's TIFF
decoders apply the TIFF orientation tag whatever the flag (``'unchanged'`` too, so label maps
saved as TIFF turned as well); :func:`decode_image` decodes a TIFF whose first image carries
an orientation other than 1 with the tag set to 1, i.e. its stored grid.
"""
import io
import os
import re
import struct
import warnings
from typing import Optional, Tuple

import mmcv
import numpy as np
from mmengine import fileio

from .config_errors import DataFileError

#: Default pixel limit: four Cityscapes frames (2048 x 1024), 8.4 Mpx (4K UHD fits).
DEFAULT_MAX_PIXELS = 4 * 2048 * 1024
#: Environment variable that sets the pixel limit of every loader (an integer, pixels).
MAX_PIXELS_ENV = 'MMAFFSEG_MAX_IMAGE_PIXELS'

#: mmcv decode flags that apply the EXIF orientation -> the same decode without it.
_IGNORE_ORIENTATION = {'color': 'color_ignore_orientation',
                       'grayscale': 'grayscale_ignore_orientation'}


def max_image_pixels(max_pixels: Optional[int] = None) -> int:
    """The pixel limit: ``max_pixels`` when given, else ``$MMAFFSEG_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`.

    Raises:
        ValueError: ``max_pixels`` or the environment variable is not a positive integer.
    """
    source = 'max_pixels'
    if max_pixels is None:
        value = os.environ.get(MAX_PIXELS_ENV, '').strip()
        if not value:
            return DEFAULT_MAX_PIXELS
        source, max_pixels = MAX_PIXELS_ENV, value
    try:
        limit = int(max_pixels)
    except (TypeError, ValueError):
        limit = 0
    if limit < 1 or str(limit) != str(max_pixels).strip():
        raise ValueError(f'{source} must be a positive integer (a number of pixels, e.g. '
                         f'{DEFAULT_MAX_PIXELS}), got {max_pixels!r}')
    return limit


#: TIFF's orientation tag (SHORT, 1 = stored grid).
_TIFF_ORIENTATION = 274


def _tiff_without_orientation(content: bytes) -> bytes:
    """``content`` with the orientation tag of a TIFF's first image set to 1 (the decoders
    then return the stored grid); anything else, or a TIFF without that tag, unchanged."""
    head = content[:4]
    if head not in (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+'):
        return content
    order, big = ('<' if head[:2] == b'II' else '>'), head[2:] in (b'+\x00', b'\x00+')
    try:
        if big:  # BigTIFF: 8-byte offsets and counts, 20-byte entries
            (offset, ) = struct.unpack(order + 'Q', content[8:16])
            (count, ) = struct.unpack(order + 'Q', content[offset:offset + 8])
            start, size, value_at = offset + 8, 20, 12
        else:
            (offset, ) = struct.unpack(order + 'I', content[4:8])
            (count, ) = struct.unpack(order + 'H', content[offset:offset + 2])
            start, size, value_at = offset + 2, 12, 8
        for entry in range(start, start + min(count, 4096) * size, size):
            tag, kind = struct.unpack(order + 'HH', content[entry:entry + 4])
            if tag != _TIFF_ORIENTATION:
                continue
            value = entry + value_at
            if kind != 3 or struct.unpack(order + 'H', content[value:value + 2])[0] == 1:
                return content
            patched = bytearray(content)
            patched[value:value + 2] = struct.pack(order + 'H', 1)
            return bytes(patched)
    except struct.error:  # truncated: the decoder reports it
        pass
    return content


def _other_header_size(content: bytes) -> Optional[Tuple[int, int]]:
    """``(height, width)`` from the header of a format OpenCV decodes and Pillow does not
    know (Radiance HDR, PAM, colour PFM, OpenEXR); None for anything else."""
    head = content[:16384]
    try:
        if head.startswith((b'#?RADIANCE', b'#?RGBE')):  # text lines, a blank one, then size
            end = head.find(b'\n\n')
            found = re.match(rb'\s*([-+])([XY]) +(\d+) +([-+])([XY]) +(\d+)', head[end + 2:])
            if end < 0 or found is None:
                return None
            sizes = {found.group(2): int(found.group(3)), found.group(5): int(found.group(6))}
            return sizes[b'Y'], sizes[b'X']
        if head.startswith(b'P7\n'):
            width = re.search(rb'\nWIDTH\s+(\d+)', head)
            height = re.search(rb'\nHEIGHT\s+(\d+)', head)
            return (int(height.group(1)), int(width.group(1))) if width and height else None
        if head.startswith((b'PF', b'Pf')):
            found = re.match(rb'P[Ff]\s+(\d+)\s+(\d+)', head)
            return (int(found.group(2)), int(found.group(1))) if found else None
        if head.startswith(b'\x76\x2f\x31\x01'):  # OpenEXR: name\0 type\0 size value ...
            pos = 8
            while pos < len(head) and head[pos] != 0:
                name_end = head.index(b'\0', pos)
                type_end = head.index(b'\0', name_end + 1)
                (size, ) = struct.unpack('<i', head[type_end + 1:type_end + 5])
                if head[pos:name_end] == b'dataWindow':
                    x0, y0, x1, y1 = struct.unpack('<4i', head[type_end + 5:type_end + 21])
                    return y1 - y0 + 1, x1 - x0 + 1
                pos = type_end + 5 + size
    except (ValueError, KeyError, struct.error):
        return None
    return None


def _header_pixels(content: bytes) -> Optional[Tuple[int, str]]:
    """``(pixels, ' (HxW)')`` of an encoded image read from its header, without decoding it
    (the size is left out of a file above Pillow's own limit); None when neither Pillow nor
    :func:`_other_header_size` recognises the format."""
    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as im:
                width, height = im.size
    except Image.DecompressionBombError as e:
        # Pillow's own limit (~179 Mpx) stops it before it returns the size; its message
        # holds the number of pixels
        found = re.search(r'\((\d+) pixels\)', str(e))
        return int(found.group(1)) if found else 2 * Image.MAX_IMAGE_PIXELS + 1, ''
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        other = _other_header_size(content)
        if other is None:
            return None
        height, width = other
    return height * width, f' ({height}x{width})'


def _refuse(path: str, pixels: int, size: str, limit: int, decoded: bool) -> None:
    raise DataFileError(
        f'image {path} has {pixels} pixels{size}, above the limit of {limit}'
        f'{"" if decoded else " (refused before decoding)"}; resize it, or raise the limit with '
        f'the loader\'s max_pixels argument or the environment variable {MAX_PIXELS_ENV}')


def decode_image(content: bytes,
                 path: str,
                 flag: str = 'color',
                 channel_order: str = 'bgr',
                 backend: Optional[str] = None,
                 max_pixels: Optional[int] = None) -> Optional[np.ndarray]:
    """``mmcv.imfrombytes`` under the pixel limit and the EXIF policy (module docstring).

    Args:
        content (bytes): The encoded image.
        path (str): Its file name, for the messages.
        flag (str): mmcv's decode flag; ``'color'`` and ``'grayscale'`` decode without the
            EXIF orientation. Defaults to 'color'.
        channel_order (str): ``'bgr'`` or ``'rgb'``. Defaults to 'bgr'.
        backend (str, optional): mmcv's decode backend. Defaults to None (mmcv's default).
        max_pixels (int, optional): Pixel limit (:func:`max_image_pixels`). Defaults to None.

    Returns:
        np.ndarray or None: The decoded image; None (or mmcv's exception) when the bytes are
        not a decodable image.

    Raises:
        DataFileError: The image has more than ``max_pixels`` pixels.
    """
    limit = max_image_pixels(max_pixels)
    if backend in (None, 'cv2', 'pillow'):
        content = _tiff_without_orientation(content)  # TIFF decoders turn it for any flag
    header = _header_pixels(content)
    if header is not None and header[0] > limit:
        _refuse(path, header[0], header[1], limit, decoded=False)
    if backend in (None, 'cv2', 'pillow') and isinstance(flag, str):
        flag = _IGNORE_ORIENTATION.get(flag, flag)
    img = mmcv.imfrombytes(content, flag=flag, channel_order=channel_order, backend=backend)
    if img is not None and header is None and img.shape[0] * img.shape[1] > limit:
        h, w = img.shape[:2]
        _refuse(path, h * w, f' ({h}x{w})', limit, decoded=True)
    if (img is not None and channel_order == 'rgb' and flag == 'color_ignore_orientation'
            and backend in (None, 'cv2') and img.ndim == 3):
        img = np.ascontiguousarray(img[..., ::-1])  # mmcv swaps only for the plain 'color'
    return img


def read_image(path: str,
               flag: str = 'color',
               channel_order: str = 'bgr',
               backend_args: Optional[dict] = None,
               max_pixels: Optional[int] = None) -> np.ndarray:
    """Read and decode an image file with :func:`decode_image` (``mmcv.imread``'s role).

    Raises:
        DataFileError: The file is missing, empty, not a decodable image, or above the pixel
            limit.
    """
    try:
        content = fileio.get(path, backend_args=backend_args)
    except (FileNotFoundError, IsADirectoryError) as e:
        raise DataFileError(f'could not read the image {path}: {e}') from e
    try:
        img = decode_image(content, path, flag, channel_order, max_pixels=max_pixels)
    except DataFileError:
        raise
    except Exception as e:  # noqa: BLE001 - mmcv/cv2 errors re-raised with the file name
        raise DataFileError(f'could not decode the image {path}: the file is corrupt, empty or '
                            f'not an image ({type(e).__name__}: {str(e).strip()})') from e
    if img is None:
        raise DataFileError(f'could not decode the image {path}: the file is corrupt, '
                            'truncated or not an image')
    return img
