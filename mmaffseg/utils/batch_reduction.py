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
