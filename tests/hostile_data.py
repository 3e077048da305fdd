# Copyright (c) mmaffseg contributors. All rights reserved.
"""Hostile image and label files, built on the spot by the tests and the hostile-input audit
(``tests/hostile_input_audit.py``)."""
import os
import struct
import zlib

import numpy as np


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_png_bomb(path: str, height: int = 30000, width: int = 30000, level: int = 1) -> str:
    """A valid all-black 8-bit grayscale PNG of ``height`` x ``width`` pixels: 30000 x 30000
    is 0.9 GB decoded (2.7 GB as a colour image) from about 4 MB (level 1, about 1 s to make)
    or 0.9 MB (level 9, about 3 s)."""
    compressor = zlib.compressobj(level)
    row = b'\0' * (width + 1)  # filter byte 0, then the pixels
    rows_per_block = max(1, (1 << 22) // len(row))
    parts, done = [], 0
    while done < height:
        n = min(rows_per_block, height - done)
        parts.append(compressor.compress(row * n))
        done += n
    parts.append(compressor.flush())
    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header) +
                _png_chunk(b'IDAT', b''.join(parts)) + _png_chunk(b'IEND', b''))
    return path


def write_exif_jpeg(path: str, image_rgb: np.ndarray, orientation: int) -> str:
    """``image_rgb`` (H, W, 3) stored as is in a JPEG whose EXIF orientation tag says
    ``orientation`` (3: show rotated by 180 degrees, 6: by 90 degrees clockwise)."""
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image_rgb).save(path, exif=exif, quality=100, subsampling=0)
    return path


def write_16bit_label(path: str, label: np.ndarray) -> str:
    """``label`` saved as a 16-bit single-channel PNG (values up to 65535)."""
    import cv2
    assert cv2.imwrite(path, label.astype(np.uint16))
    return path


def add_symlink_loop(folder: str) -> str:
    """Two symbolic links in ``folder`` that point at each other (``stat`` fails with ELOOP);
    returns the path of the first."""
    first, second = os.path.join(folder, 'loop_a'), os.path.join(folder, 'loop_b')
    os.symlink(second, first)
    os.symlink(first, second)
    return first
