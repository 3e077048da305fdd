# Copyright (c) mmaffseg contributors. All rights reserved.
"""Image decoding for every mmaffseg loader: a pixel limit checked before decoding, and one
EXIF orientation policy.

**Pixel limit.** A PNG of a few hundred kilobytes can declare 30000x30000 pixels and decode to
gigabytes. :func:`decode_image` reads the image's size from its header (with Pillow, which
parses headers without decoding) and refuses an image above ``max_pixels`` before decoding it.
The default, :data:`DEFAULT_MAX_PIXELS`, is four Cityscapes frames (4 x 2048 x 1024 = 8.4 Mpx,
enough for 4K UHD); the environment variable ``MMAFFSEG_MAX_IMAGE_PIXELS`` changes it for every
loader of the process, a loader's ``max_pixels`` argument for that loader. A format whose header
Pillow cannot read is decoded first and checked after (OpenCV's own limit, 2**30 pixels, still
applies).

**EXIF orientation is ignored.** Every image decodes to its stored pixel grid, the grid label
maps are drawn on (mmseg reads label maps with ``IMREAD_UNCHANGED``, which never rotates). mmcv's
``'color'`` and ``'grayscale'`` flags apply the orientation tag (``cv2.IMREAD_COLOR``, Pillow's
``exif_transpose``): a JPEG tagged "rotate 180" would decode upside down over its label map,
same shape and silently misaligned. :func:`decode_image` maps them to mmcv's
``'*_ignore_orientation'`` flags.
"""
import io
import os
import re
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


def _header_pixels(content: bytes) -> Optional[Tuple[int, str]]:
    """``(pixels, ' (HxW)')`` of an encoded image read from its header, without decoding it
    (the size is left out of a file above Pillow's own limit); None when Pillow does not
    recognise the format."""
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
        return None
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
