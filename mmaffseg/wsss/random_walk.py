# Copyright (c) mmaffseg contributors. All rights reserved.
"""Random walk with AffinityNet affinities, on a fixed-size-row sparse transition matrix.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

The affinity matrix A is symmetric with a unit diagonal and nonzero only between pixels closer
than ``radius`` on the feature grid. The walk propagates the score stack ``x`` (CAMs plus
background, average-pooled to the grid) ``t = 2 ** logt`` times through
``T = D^-1 A^beta`` (D the row sums of ``A^beta``): ``x <- T x``. The reference builds A as a
dense ``N x N`` matrix, column-normalises it and squares it ``logt`` times, which for a symmetric
A is the same ``x T^t``.

Here every row of T has the same ``S = 2K + 1`` slots (69 for radius 5): the pixel itself and
its partner under each offset of the radius disc, in increasing column order (an ELLPACK
layout; slots without a partner, at the grid border, hold weight 0 and point at the pixel
itself). One step is a weighted sum of ``S`` rows of the channels-last ``(N, C)`` score table,
which is exactly :func:`torch.nn.functional.embedding_bag` with ``per_sample_weights`` (FBGEMM's
vectorised kernel on CPU, a CUDA kernel on GPU): memory O(N S), no ``N x N`` matrix, no
squaring, and 1.4x faster per step than a CSR ``T @ x`` with 21 channels on one CPU thread.
With fewer than :data:`EMBEDDING_BAG_MIN_CHANNELS` channels (PSA's usual background + present
classes) the CSR product of the same rows is faster and is used instead. Channels that are zero
everywhere (absent classes in a stack of all classes) stay zero and are not walked.
On the CPU the steps run by default in the compiled kernel of
:mod:`mmaffseg.wsss.random_walk_kernel` (the same walk as a stencil over the pair affinities,
all steps in one C++ call), built on first use; where it cannot be built, and on GPUs, the
PyTorch kernels above run. Grid pixels
without a pair (the first ``radius - 1`` of row 0 and some bottom corners) keep only their
self-loop, so they keep their input scores.
"""
import warnings
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmaffseg.ops.neighbour_offsets import from_window, neighbour_offsets
from mmaffseg.ops.psa_defaults import PSA_DEFAULTS

from .cam import add_background
from .random_walk_kernel import compiled_library, compiled_walk, kernel_choice, unavailable_reason


def pair_weights(aff: Tensor, size: Tuple[int, int], radius: int,
                 beta: float) -> Tuple[Tensor, Tensor]:
    """``A^beta`` of every pair, stored at its from-pixel on the full grid.

    Args:
        aff (Tensor): ``(B, K, P)`` pair affinities on an ``H x W`` grid, e.g. from
            :func:`mmaffseg.models.decode_heads.affinity_head.pairwise_affinity`.
        size (tuple[int, int]): The grid ``(H, W)``.
        radius (int): Pair radius.
        beta (float): Power applied to the affinities.

    Returns:
        tuple[Tensor, Tensor]: ``(B, K, H, W)`` weights of the pairs ``(y, x) -> (y + dy_k, x +
        dx_k)`` under the offsets of
        :func:`mmaffseg.ops.neighbour_offsets.neighbour_offsets` (0 where ``(y, x)``
        is not a from-pixel, so wherever the partner is off the grid) and the boolean ``(H, W)``
        mask of the from-pixels.
    """
    batch, (height, width), offsets = aff.shape[0], size, neighbour_offsets(radius)
    hf, wf = from_window(radius, size)
    if tuple(aff.shape[1:]) != (len(offsets), hf * wf):
        raise ValueError(f'aff must be (B, K, P) = (B, {len(offsets)}, {hf * wf}) for a '
                         f'{tuple(size)} grid and radius {radius}, got {tuple(aff.shape)}; '
                         'compute the affinities on the same grid as the scores')
    window = (slice(0, hf), slice(radius - 1, radius - 1 + wf))  # the from-pixels
    pair_weight = aff.new_zeros(batch, len(offsets), height, width)
    pair_weight[(..., *window)] = aff.view(batch, len(offsets), hf, wf).pow(beta)
    is_from = torch.zeros(height, width, dtype=torch.bool, device=aff.device)
    is_from[window] = True
    return pair_weight, is_from


def transition_rows(aff: Tensor, size: Tuple[int, int], radius: int,
                    beta: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Row-stochastic ``T = D^-1 A^beta`` with ``S = 2K + 1`` slots per row (ELLPACK).

    Args:
        aff (Tensor): ``(B, K, P)`` pair affinities on an ``H x W`` grid, e.g. from
            :func:`mmaffseg.ops.affinity_pairs.pairwise_affinity`.
        size (tuple[int, int]): The grid ``(H, W)``.
        radius (int): Pair radius.
        beta (float): Power applied to the affinities.

    Returns:
        tuple[Tensor, Tensor, Tensor]: For the ``B * H * W`` rows (images one after the other,
        pixels row-major): ``columns`` ``(B * H * W, S)`` (int32 when the indices fit, else
        int64), ``weights`` ``(B * H * W, S)`` in the dtype of ``aff`` (each row sums to 1;
        0 where the slot has no partner) and the boolean ``exists`` ``(B * H * W, S)``. Columns
        increase along a row where ``exists``; a slot without a partner points at its own row.
    """
    batch, (height, width), offsets = aff.shape[0], size, neighbour_offsets(radius)
    pair_weight, is_from = pair_weights(aff, size, radius, beta)
    # (dy, dx, weight, exists) of each pixel's partner at (y + dy, x + dx); the backward half
    # reads the pair from its from-pixel (a roll that never wraps a nonzero entry)
    slots = [(0, 0, torch.ones_like(pair_weight[:, 0]), torch.ones_like(is_from))]
    for k, (dy, dx) in enumerate(offsets):
        slots.append((dy, dx, pair_weight[:, k], is_from))
        slots.append((-dy, -dx, pair_weight[:, k].roll((dy, dx), (-2, -1)),
                      is_from.roll((dy, dx), (-2, -1))))
    slots.sort(key=lambda slot: slot[:2])  # column order within every row
    weight = torch.stack([slot[2] for slot in slots], dim=-1)  # (B, H, W, S)
    exists = torch.stack([slot[3] for slot in slots], dim=-1).expand_as(weight)
    n = batch * height * width
    index_dtype = torch.int32 if n + height * width < 2**31 else torch.int64
    node = torch.arange(n, device=aff.device, dtype=index_dtype).view(*weight.shape[:3], 1)
    cols = node + torch.tensor([dy * width + dx for dy, dx, _, _ in slots], dtype=index_dtype,
                               device=aff.device)
    cols = torch.where(exists, cols, node)  # never out of range, never into another image
    weight = weight / weight.sum(dim=-1, keepdim=True)
    return cols.view(n, -1), weight.view(n, -1), exists.reshape(n, -1)


def csr_transition(cols: Tensor, weight: Tensor, exists: Tensor) -> Tensor:
    """Sparse CSR ``(B * H * W, B * H * W)`` row-stochastic ``T`` from the ``(columns,
    weights, exists)`` of :func:`transition_rows` (the slots that have a partner)."""
    n = cols.shape[0]
    crow = torch.cat([cols.new_zeros(1), exists.sum(dim=-1).cumsum(0).to(cols.dtype)])
    with warnings.catch_warnings():  # torch warns that CSR support is in beta
        warnings.simplefilter('ignore', UserWarning)
        return torch.sparse_csr_tensor(crow, cols[exists], weight[exists], (n, n))


#: From this many walked channels on, ``embedding_bag`` (one fixed cost per slot, then
#: vectorised over the channels) beats the CSR product (cheaper per slot, slower per channel);
#: crossover measured at 12-16 channels on grids of 47 x 63 and 128 x 256, one CPU thread.
EMBEDDING_BAG_MIN_CHANNELS = 16


def random_walk(scores: Tensor, aff: Tensor, radius: int = PSA_DEFAULTS.radius,
                beta: float = PSA_DEFAULTS.rw_beta, logt: int = PSA_DEFAULTS.rw_logt,
                kernel: Optional[str] = None) -> Tensor:
    """Propagate scores on the affinity grid ``t = 2 ** logt`` steps.

    Args:
        scores (Tensor): ``(B, C, H, W)`` scores on the grid of the affinities.
        aff (Tensor): ``(B, K, P)`` pair affinities of that grid.
        radius (int): Pair radius. Default: PSA's ``radius``.
        beta (float): Affinity power. Default: PSA's ``rw_beta``.
        logt (int): log2 of the number of steps. Default: PSA's ``rw_logt``.
        kernel (str, optional): ``'auto'``: the compiled CPU kernel of
            :mod:`mmaffseg.wsss.random_walk_kernel` for float32/float64 CPU scores when it
            builds, else the PyTorch kernels; ``'compiled'``: that kernel or an error;
            ``'torch'``: the PyTorch kernels (``embedding_bag`` / CSR). Default: None, which
            reads ``$MMAFFSEG_RANDOM_WALK_KERNEL`` (default ``'auto'``).

    Returns:
        Tensor: ``(B, C, H, W)`` propagated scores with channels-last strides: the bilinear
        upsampling of :func:`random_walk_cams` runs as fast on them as on contiguous ones and the
        argmax over the channels after it 3-5x faster (1 CPU thread, torch 2.13).
    """
    batch, channels, height, width = scores.shape
    choice = kernel_choice(kernel)
    # a channel that is zero everywhere stays zero (T 0 = 0): walk only the others, e.g. the
    # present classes of a stack that holds every class with zeros for the absent ones
    live = scores.flatten(2).ne(0).any(dim=-1).any(dim=0).nonzero()[:, 0]
    compiled = choice != 'torch' and scores.device.type == 'cpu' and scores.dtype in (
        torch.float32, torch.float64)
    if choice == 'compiled' and not compiled:
        raise ValueError(f'kernel={choice!r} takes float32/float64 CPU scores, got '
                         f'{scores.dtype} on {scores.device}; use kernel=\'auto\'')
    if compiled and compiled_library() is None and choice == 'compiled':
        raise RuntimeError('random walk: the compiled CPU kernel is unavailable '
                           f'({unavailable_reason()}); use kernel=\'auto\' or \'torch\'')
    if compiled and compiled_library() is not None:
        pair = pair_weights(aff.to(scores.dtype), (height, width), radius, beta)[0]
        x = scores[:, live].permute(0, 2, 3, 1)  # (B, H, W, C')
        x = compiled_walk(x, pair, neighbour_offsets(radius), 2**logt if len(live) else 0)
        return _with_dead_channels(x.reshape(batch * height * width, len(live)), live, scores)
    cols, weight, exists = transition_rows(aff.to(scores.dtype), (height, width), radius, beta)
    x = scores[:, live].flatten(2).transpose(1, 2).reshape(batch * height * width, len(live))
    if len(live) >= EMBEDDING_BAG_MIN_CHANNELS:
        def step(x: Tensor) -> Tensor:  # x'_i = sum_s weight[i, s] x[cols[i, s]]
            return F.embedding_bag(cols, x, mode='sum', per_sample_weights=weight)
    else:
        trans = csr_transition(cols, weight, exists)

        def step(x: Tensor) -> Tensor:
            return trans @ x
    for _ in range(2**logt if len(live) else 0):  # x <- T x
        x = step(x)
    return _with_dead_channels(x, live, scores)


def _with_dead_channels(x: Tensor, live: Tensor, scores: Tensor) -> Tensor:
    """The walked ``(B * H * W, C')`` live channels of ``scores`` as its ``(B, C, H, W)`` with
    the zero channels put back, in channels-last strides (as measured fastest downstream)."""
    batch, channels, height, width = scores.shape
    if len(live) == channels:
        out = x.view(batch, height, width, channels)
    else:
        out = scores.new_zeros(batch, height, width, channels)
        out[..., live] = x.view(batch, height, width, len(live))
    return out.permute(0, 3, 1, 2)


def random_walk_cams(cams: Tensor, aff: Tensor, alpha: float = PSA_DEFAULTS.rw_alpha,
                     beta: float = PSA_DEFAULTS.rw_beta, logt: int = PSA_DEFAULTS.rw_logt,
                     radius: int = PSA_DEFAULTS.radius, stride: int = PSA_DEFAULTS.stride,
                     walk: Callable[..., Tensor] = random_walk) -> Tensor:
    """PSA's walk from image-size CAMs to image-size scores (argmax -> pseudo label).

    The background ``(1 - max CAM) ** alpha`` is added, the stack zero-padded (bottom/right) to
    a multiple of ``stride``, average-pooled by ``stride``, walked, upsampled bilinearly
    (``align_corners=False``) to the padded size and cropped back.

    Args:
        cams (Tensor): ``(B, K, H, W)`` CAMs in [0, 1] (the present classes, or all classes with
            zeros for absent ones: the argmax is the same).
        aff (Tensor): ``(B, K', P)`` affinities on the ``ceil(H / stride) x ceil(W / stride)``
            grid, e.g. from :meth:`mmaffseg.models.segmentors.AffinityNet.predict_affinity` on
            the image padded to a multiple of ``stride``.
        alpha (float): Background power. Default: PSA's ``rw_alpha``.
        beta (float): Affinity power. Default: PSA's ``rw_beta``.
        logt (int): log2 of the number of steps. Default: PSA's ``rw_logt``.
        radius (int): Pair radius. Default: PSA's.
        stride (int): Feature stride of the affinities. Default: PSA's.
        walk (Callable): The walk on the pooled scores, ``walk(scores, aff, radius, beta,
            logt)``. Default: :func:`random_walk`; the random-walk benchmark passes the
            reference's dense walk.

    Returns:
        Tensor: ``(B, K + 1, H, W)`` walked scores, background first; use
        :func:`mmaffseg.wsss.cam.stack_to_label` on their argmax.
    """
    height, width = cams.shape[-2:]
    stack = F.pad(add_background(cams, alpha), (0, -width % stride, 0, -height % stride))
    walked = walk(F.avg_pool2d(stack, stride, stride), aff, radius, beta, logt)
    walked = F.interpolate(walked, stack.shape[-2:], mode='bilinear', align_corners=False)
    return walked[..., :height, :width]
