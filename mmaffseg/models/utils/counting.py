# Copyright (c) mmaffseg contributors. All rights reserved.
"""Counting label occurrences without data-dependent shapes (no host synchronisation).

``torch.unique``, ``nonzero``, boolean-mask indexing and ``bincount(minlength=int(x.max()))``
all size their output from the data, so on a GPU each one waits for the device to finish
before Python can go on. :func:`count_occurrences` answers "how many times does each of these
values occur in that tensor" with one sort and two binary searches, whose output shapes depend
only on the input shapes.
"""
import torch
from torch import Tensor


def count_occurrences(values: Tensor, data: Tensor) -> Tensor:
    """Number of times each entry of ``values`` occurs in ``data``, along the last dimension.

    Args:
        values (Tensor): (..., M) integer values to count.
        data (Tensor): (..., N) integer data, the same leading dimensions as ``values``.

    Returns:
        Tensor: (..., M) int64 counts.
    """
    ordered = data.sort(dim=-1).values.contiguous()
    values = values.contiguous()
    return (torch.searchsorted(ordered, values, right=True)
            - torch.searchsorted(ordered, values, right=False))
