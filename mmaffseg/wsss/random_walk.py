# Copyright (c) mmaffseg contributors. All rights reserved.
"""Random walk with AffinityNet affinities, on a sparse transition matrix.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

The affinity matrix A is symmetric with a unit diagonal and nonzero only between pixels closer
than ``radius`` on the feature grid. The walk propagates the score stack ``x`` (CAMs plus
background, average-pooled to the grid) ``t = 2 ** logt`` times through
``T = D^-1 A^beta`` (D the row sums of ``A^beta``): ``x <- T x``. The reference builds A as a
dense ``N x N`` matrix, column-normalises it and squares it ``logt`` times, which for a symmetric
A is the same ``x T^t``. Here T is a sparse CSR matrix (``N * (2K + 1)`` entries, K = 34 for
radius 5), block diagonal over the batch, and applied ``t`` times: memory O(N K) instead of
O(N^2), and it runs wherever the tensors are (CPU or GPU). Grid pixels without a pair (the
first ``radius - 1`` of row 0 and some bottom corners) keep only their self-loop, so they keep
their input scores.
"""
import warnings
from typing import Callable, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmaffseg.ops.neighbour_offsets import from_window, neighbour_offsets

from .cam import add_background


def transition_matrix(aff: Tensor, size: Tuple[int, int], radius: int = 5,
                      beta: float = 8) -> Tensor:
    """Sparse row-stochastic ``T = D^-1 A^beta``, block diagonal over the batch.

    Built row by row without sorting: every pixel lists its partners in the order of the
    offsets, which is the order of their column indices. Indices are int32 when they fit (half
    the memory traffic of int64, about 3x faster products on CPU).

    Args:
        aff (Tensor): ``(B, K, P)`` pair affinities on an ``H x W`` grid, e.g. from
            :func:`mmaffseg.ops.affinity_pairs.pairwise_affinity`.
        size (tuple[int, int]): The grid ``(H, W)``.
        radius (int): Pair radius. Default: 5.
        beta (float): Power applied to the affinities. Default: 8.

    Returns:
        Tensor: Sparse CSR ``(B * H * W, B * H * W)`` on the device of ``aff``.
    """
    batch, (height, width), offsets = aff.shape[0], size, neighbour_offsets(radius)
    hf, wf = from_window(radius, size)
    if tuple(aff.shape[1:]) != (len(offsets), hf * wf):
        raise ValueError(f'aff must be (B, K, P) = (B, {len(offsets)}, {hf * wf}) for a '
                         f'{tuple(size)} grid and radius {radius}, got {tuple(aff.shape)}; '
                         'compute the affinities on the same grid as the scores')
    # weight of the pair (y, x) -> (y + dy, x + dx), stored at its from-pixel (y, x)
    window = (slice(0, hf), slice(radius - 1, radius - 1 + wf))  # the from-pixels
    pair_weight = aff.new_zeros(batch, len(offsets), height, width)
    pair_weight[(..., *window)] = aff.view(batch, len(offsets), hf, wf).pow(beta)
    is_from = torch.zeros(height, width, dtype=torch.bool, device=aff.device)
    is_from[window] = True
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
    index_dtype = torch.int32 if n * len(slots) < 2**31 else torch.int64
    node = torch.arange(n, device=aff.device, dtype=index_dtype).view(*weight.shape[:3], 1)
    cols = node + torch.tensor([dy * width + dx for dy, dx, _, _ in slots], dtype=index_dtype,
                               device=aff.device)
    weight = weight / weight.sum(dim=-1, keepdim=True)
    crow = torch.cat([node.new_zeros(1), exists.sum(dim=(-1)).flatten().cumsum(0)])
    with warnings.catch_warnings():  # torch warns that CSR support is in beta
        warnings.simplefilter('ignore', UserWarning)
        return torch.sparse_csr_tensor(crow.to(index_dtype), cols[exists], weight[exists],
                                       (n, n))


def random_walk(scores: Tensor, aff: Tensor, radius: int = 5, beta: float = 8,
                logt: int = 8) -> Tensor:
    """Propagate scores on the affinity grid ``t = 2 ** logt`` steps.

    Args:
        scores (Tensor): ``(B, C, H, W)`` scores on the grid of the affinities.
        aff (Tensor): ``(B, K, P)`` pair affinities of that grid.
        radius (int): Pair radius. Default: 5.
        beta (float): Affinity power. Default: 8.
        logt (int): log2 of the number of steps. Default: 8 (256 steps).

    Returns:
        Tensor: ``(B, C, H, W)`` propagated scores.
    """
    batch, channels, height, width = scores.shape
    trans = transition_matrix(aff.to(scores.dtype), (height, width), radius, beta)
    x = scores.flatten(2).transpose(1, 2).reshape(-1, channels)  # (B * N, C)
    for _ in range(2**logt):
        x = trans @ x
    return x.view(batch, -1, channels).transpose(1, 2).reshape(scores.shape)


def random_walk_cams(cams: Tensor, aff: Tensor, alpha: float = 16, beta: float = 8,
                     logt: int = 8, radius: int = 5, stride: int = 8,
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
        alpha (float): Background power. Default: 16.
        beta (float): Affinity power. Default: 8.
        logt (int): log2 of the number of steps. Default: 8.
        radius (int): Pair radius. Default: 5.
        stride (int): Feature stride of the affinities. Default: 8.
        walk (Callable): The walk on the pooled scores, ``walk(scores, aff, radius, beta,
            logt)``. Default: :func:`random_walk`; benchmarks pass the dense reference
            :func:`mmaffseg.wsss.dense_random_walk.dense_random_walk`.

    Returns:
        Tensor: ``(B, K + 1, H, W)`` walked scores, background first; use
        :func:`mmaffseg.wsss.cam.stack_to_label` on their argmax.
    """
    height, width = cams.shape[-2:]
    stack = F.pad(add_background(cams, alpha), (0, -width % stride, 0, -height % stride))
    walked = walk(F.avg_pool2d(stack, stride, stride), aff, radius, beta, logt)
    walked = F.interpolate(walked, stack.shape[-2:], mode='bilinear', align_corners=False)
    return walked[..., :height, :width]
