# Copyright (c) mmaffseg contributors. All rights reserved.
"""Batch-level sums over all data-parallel processes, with DDP-correct gradients.

Some losses normalise by a count taken over the whole batch (e.g. AffinityNet's per-pair-type
means, Ahn & Kwak, CVPR 2018: the official code gathers the batch of 8 images on one process).
Under DistributedDataParallel each process sees only its shard, so a per-process mean weighs a
shard with 10 pairs as much as one with 1000. :func:`global_sum` returns the sum over all
processes, so that ``global_sum(local_sum) / global_sum(local_count)`` is the single-process
batch mean on every rank.

Gradients: DDP averages the parameter gradients of the ``W`` processes. The value returned is the
all-reduced (detached) sum; its gradient with respect to the local sum is ``W``, so that after
DDP's averaging the gradient of the whole loss equals the single-process gradient of the same
batch (the counts are constants). With one process (or no process group) it is the identity.
"""
from typing import List

import torch
import torch.distributed as torch_dist
from torch import Tensor


def data_parallel_world_size() -> int:
    """Number of processes of the default process group (1 without one)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_world_size()
    return 1


def global_sum(local: Tensor, grad_scale: bool = True) -> Tensor:
    """Sum ``local`` over all processes of the default process group.

    Args:
        local (Tensor): This process's partial sum(s), any shape (the same on every rank).
        grad_scale (bool): Give the local input a gradient of ``world_size`` (undone by DDP's
            gradient averaging; see the module docstring). False: gradient 1. Default: True.

    Returns:
        Tensor: The sum over the processes, with the gradient described above; ``local`` itself
        with one process.
    """
    world_size = data_parallel_world_size()
    if world_size == 1:
        return local
    total = local.detach().clone()
    torch_dist.all_reduce(total, op=torch_dist.ReduceOp.SUM)
    if not local.requires_grad:
        return total
    scale = world_size if grad_scale else 1
    # value: total; d(value)/d(local) = scale
    return total + scale * (local - local.detach())


def mean_over_images(per_image: List[Tensor], like: Tensor, across_ranks: bool = True,
                     weight: float = 1.0) -> Tensor:
    """Mean of per-image losses over the images of the whole (data-parallel) batch.

    The sum of ``per_image`` and its count are summed over all processes in one all-reduce
    (:func:`global_sum`) when ``across_ranks``; images without a loss term are simply absent.

    Args:
        per_image (list[Tensor]): Scalar loss of each image of this process that has one.
        like (Tensor): A tensor the loss depends on (e.g. the embedding): with no image, the
            result is an exact 0 still connected to it, so every parameter gets a gradient.
        across_ranks (bool): Normalise over all processes. Default: True.
        weight (float): Loss weight, applied to the sum before the division. Default: 1.0.

    Returns:
        Tensor: Scalar ``weight *`` mean (0 when no process has an image).
    """
    total = torch.stack(per_image).sum() if per_image else like.sum() * 0.0
    total = torch.stack([total, total.new_tensor(float(len(per_image)))])
    if across_ranks:  # one all-reduce for both numbers, on every rank
        total = global_sum(total)
    return weight * total[0] / total[1].clamp_min(1)
