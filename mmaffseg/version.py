# Copyright (c) mmaffseg contributors. All rights reserved.
"""Version of mmaffseg and the OpenMMLab versions it supports."""

#: This package's version (PEP 440).
__version__ = '0.1.0'

# Inclusive lower bound, exclusive upper bound, as mmseg states its own.
MMCV_MIN, MMCV_MAX = '2.0.0rc4', '2.2.0'
MMENGINE_MIN, MMENGINE_MAX = '0.7.1', '1.0.0'
MMSEG_MIN, MMSEG_MAX = '1.0.0', '1.3.0'


def parse_version_info(version_str: str) -> tuple:
    """Parse a version string into a tuple, e.g. '0.1.0rc1' -> (0, 1, 0, 'rc1')."""
    version_info = []
    for x in version_str.split('.'):
        if x.isdigit():
            version_info.append(int(x))
        elif 'rc' in x:
            patch, rc = x.split('rc')
            version_info.append(int(patch))
            version_info.append(f'rc{rc}')
    return tuple(version_info)


#: ``__version__`` as a tuple, e.g. ``(0, 1, 0)`` or ``(0, 1, 0, 'rc1')``.
version_info = parse_version_info(__version__)
