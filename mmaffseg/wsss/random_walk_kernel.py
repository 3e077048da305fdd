# Copyright (c) mmaffseg contributors. All rights reserved.
"""A compiled CPU kernel for the steps of PSA's random walk (Ahn & Kwak, CVPR 2018).

One step of the walk is ``y[p] = (x[p] + sum_k a_k[p] x[p + o_k] + a_k[p - o_k] x[p - o_k]) /
d[p]`` for every grid pixel ``p``: ``a_k`` the affinity ``A^beta`` of the pair under the
half-disc offset ``o_k`` stored at its from-pixel, ``d`` the row sums of ``A^beta`` (1 for the
self-loop plus both halves of every pair). This is ``x <- T x`` with ``T = D^-1 A^beta``, but a
step reads only the ``K`` pair affinities of a pixel (``A`` is symmetric: the other ``K`` sit at
its partners, read from cache) and no column indices: 34 floats per pixel for radius 5, against
69 weights and 69 indices in the fixed-size rows of
:func:`mmaffseg.wsss.random_walk.transition_rows`.

The C++ function runs all ``t`` steps in one call, swapping two buffers that hold the scores
pixel-major with a zero halo of ``radius - 1`` pixels around every image (a partner offset
never leaves the buffer nor reaches another image) and the channels padded with zeros to a
multiple of 4. Four consecutive pixels and up to 32 channels of each are accumulated at once in
vector registers (GCC/Clang vector extensions), one pixel's pairs in a fixed order. For PSA's
radius 5 with float32 scores of up to 32 channels an unrolled variant takes eight pixels at a
time and loads each score vector of a disc row once, multiplying it into all the pixels it is a
partner of (1.5-2x faster per step than the general loop, one thread of an AMD EPYC). With more
than one torch thread (:func:`torch.get_num_threads`) the grid rows are split among that many
threads, which meet at a barrier after every step.

It is built on first use by :func:`torch.utils.cpp_extension.load_inline` (a C++ compiler and
ninja; no torch headers: about 10 s on 2 cores) with ``-O3 -march=native``, cached in the torch
extensions directory (``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``); the
extension's name carries a hash of the CPU's model and instruction-set flags, so a cache shared
between machines (a network home) never loads a binary built for other instructions. When the
build fails, one warning is logged and :func:`compiled_walk` returns None: the walk stays on
PyTorch. ``MMAFFSEG_RANDOM_WALK_KERNEL=torch`` forces the PyTorch kernels everywhere,
``compiled`` requires this one (``auto``, the default, uses it when it builds).

The C++ source is :data:`SOURCE_FILE`; its text is what the build hashes and compiles.
"""
import ctypes
import hashlib
import os
import platform
from typing import List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

#: Environment variable choosing the walk's kernel, one of :data:`KERNELS`.
KERNEL_ENV = 'MMAFFSEG_RANDOM_WALK_KERNEL'
#: ``auto``: this kernel for float32/float64 CPU scores when it builds, else PyTorch;
#: ``compiled``: this kernel or an error; ``torch``: the PyTorch kernels.
KERNELS = ('auto', 'compiled', 'torch')

#: The C++ source: ``random_walk_kernel.cpp`` beside this module (installed with the package).
SOURCE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'random_walk_kernel.cpp')

_FLAGS = ['-O3', '-march=native', '-ffp-contract=fast', '-std=c++17', '-Wno-psabi']
_library = None  # the loaded kernel; False once its build failed
_failure = ''  # why it is unavailable


def kernel_choice(kernel: Optional[str] = None) -> str:
    """The kernel asked for: ``kernel`` if given, else ``$MMAFFSEG_RANDOM_WALK_KERNEL``, else
    ``auto``."""
    choice = kernel or os.environ.get(KERNEL_ENV, '') or 'auto'
    if choice not in KERNELS:
        source = 'kernel' if kernel else f'${KERNEL_ENV}'
        raise ValueError(f'{source} must be one of {KERNELS}, got {choice!r}')
    return choice


def _cpu_tag() -> str:
    """A short hash of this CPU's model and instruction-set flags (part of the build name)."""
    info = platform.machine() + platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            lines = {line for line in f if line.startswith(('model name', 'flags', 'Features'))}
        info += ''.join(sorted(lines))
    except OSError:
        pass
    return hashlib.sha1(info.encode()).hexdigest()[:10]


def compiled_library() -> Optional[ctypes.CDLL]:
    """The built kernel (built, or loaded from the cache, on the first call), or None when it
    cannot be built here (the reason is logged once and kept in :func:`unavailable_reason`)."""
    global _library, _failure
    if _library is None:
        try:
            from torch.utils.cpp_extension import load_inline
            with open(SOURCE_FILE, encoding='utf-8') as f:
                source = f.read()
            path = load_inline(f'mmaffseg_random_walk_{_cpu_tag()}', source,
                               extra_cflags=_FLAGS, is_python_module=False,
                               no_implicit_headers=True, verbose=False)
            library = ctypes.CDLL(path)  # calls release the GIL
            for name in ('mmaffseg_walk_f32', 'mmaffseg_walk_f64'):
                fn = getattr(library, name)
                fn.restype = ctypes.c_int
                fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 7
            _library = library
        except Exception as exc:  # no compiler, no ninja, a failed build: stay on PyTorch
            _library = False
            _failure = f'{type(exc).__name__}: {str(exc).strip()[-500:]}'
            print_log(f'random walk: the compiled CPU kernel is unavailable ({_failure}); using '
                      'the PyTorch kernels. Install a C++ compiler and ninja to build it, or set '
                      f'{KERNEL_ENV}=torch to silence this.', logger='current', level=30)
    return _library or None


def unavailable_reason() -> str:
    """Why :func:`compiled_library` returned None ('' when it has not failed)."""
    return _failure


def compiled_walk(scores: Tensor, pair: Tensor, offsets: List[Tuple[int, int]],
                  steps: int) -> Optional[Tensor]:
    """``steps`` steps of the walk with the compiled kernel, or None when it is unavailable.

    Args:
        scores (Tensor): ``(B, H, W, C)`` float32/float64 scores on the CPU (pixel-major).
        pair (Tensor): ``(B, K, H, W)`` affinities ``A^beta`` (dtype of ``scores``) between
            pixel ``(y, x)`` and ``(y + dy_k, x + dx_k)``; 0 where there is no such pair (at
            least wherever the partner is off the grid).
        offsets (list[tuple[int, int]]): The ``K`` offsets ``(dy_k, dx_k)``, a half disc.
        steps (int): Number of steps.

    Returns:
        Tensor | None: ``(B, H, W, C)`` contiguous walked scores, a new tensor.
    """
    batch, height, width, channels = scores.shape
    if scores.device.type != 'cpu' or scores.dtype not in (torch.float32, torch.float64):
        raise ValueError('the compiled walk takes float32/float64 CPU scores, got '
                         f'{scores.dtype} on {scores.device}')
    if tuple(pair.shape) != (batch, len(offsets), height, width) or pair.dtype != scores.dtype \
            or pair.device != scores.device:
        raise ValueError(f'pair must be (B, K, H, W) = {(batch, len(offsets), height, width)} '
                         f'{scores.dtype} on {scores.device}, got {tuple(pair.shape)} '
                         f'{pair.dtype} on {pair.device}')
    library = compiled_library()
    if library is None:
        return None
    scores, pair = scores.contiguous(), pair.contiguous()
    dydx = torch.tensor(offsets, dtype=torch.int64).reshape(-1)
    out = torch.empty_like(scores)
    walk = library.mmaffseg_walk_f32 if scores.dtype == torch.float32 else \
        library.mmaffseg_walk_f64
    status = walk(scores.data_ptr(), out.data_ptr(), pair.data_ptr(), dydx.data_ptr(), batch,
                  height, width, channels, len(offsets), steps, torch.get_num_threads())
    if status == 1:
        raise MemoryError(f'the compiled random walk could not allocate its buffers for '
                          f'{batch} x {height} x {width} x {channels} scores (about 3x their '
                          'size); walk fewer images at once')
    if status:
        raise RuntimeError(f'the compiled random walk failed (status {status}); set '
                           f'{KERNEL_ENV}=torch to use the PyTorch kernels')
    return out
