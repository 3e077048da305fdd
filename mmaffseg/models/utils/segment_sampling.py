# Copyright (c) mmaffseg contributors. All rights reserved.
"""Pixels drawn per segment for the sampled metric losses, batched over the images.

Shared by the N-pair L2 loss of Semantic Soft Segmentation (Aksoy et al., SIGGRAPH 2018:
``num_instances`` random segments per image, ``num_pixels`` pixels in each, resampled several
times) and the instance-embedding loss of Fathi et al. (arXiv:1703.10277, 2017: K pixels in every
instance). Per image and draw, segments are chosen uniformly without replacement (all of them
when fewer are present than asked), pixels uniformly with replacement inside each segment.

All images of a batch are handled by one sort of the (image, segment id) keys; segment sizes and
offsets come from a scatter-add and a cumulative sum, so the number of operations depends on the
shapes only. The one host synchronisation per batch is reading the number of segments of each
image (it sizes the output). The random numbers of image ``b`` are one row of a single
``torch.rand`` call: ``R * S`` keys (one per draw and segment, ``S`` the largest segment count
of the batch; a segment is chosen by the ``k`` smallest keys), then ``R * k * num_pixels``
uniforms that pick the pixels. For a single image, and whenever all images hold the same number
of segments, this consumes the generator exactly as the former per-image loop did, so its draws
are identical; otherwise they follow the same distribution.
"""
from typing import NamedTuple, Optional

import torch
from torch import Tensor


class SegmentDraws(NamedTuple):
    """Pixels drawn in a batch of label maps (see :func:`sample_segment_pixels_batched`).

    ``index``, ``segment`` and ``valid`` have shape (B, R, k * num_pixels), grouped segment by
    segment; ``k`` is the same for the batch. The draws of image ``b`` that are real come first:
    its first ``min(k, num_segments[b]) * num_pixels`` points; the rest are padding
    (``valid`` False, index 0, segment id -1).
    """
    index: Tensor  #: flat pixel indices into each label map, int64
    segment: Tensor  #: segment id of every point, int64
    valid: Tensor  #: False for padding points, bool
    num_segments: Tensor  #: (B,) int64 segments present in each image
    num_segments_list: list  #: the same on the host (read once)


def sample_segment_pixels_batched(labels: Tensor,
                                  num_instances: Optional[int],
                                  num_pixels: int,
                                  num_resamples: int = 1,
                                  ignore_index: int = 255,
                                  generator: Optional[torch.Generator] = None
                                  ) -> SegmentDraws:
    """Draw ``num_pixels`` pixels in each of ``num_instances`` random segments of every image.

    Args:
        labels (Tensor): Segment ids, shape (B, ...) (flattened per image), integer.
            ``ignore_index`` marks pixels that are never drawn.
        num_instances (int | None): Segments per draw; None: all segments of each image.
        num_pixels (int): Pixels per segment.
        num_resamples (int): Independent draws (R). Defaults to 1.
        ignore_index (int): Label of ignored pixels. Defaults to 255.
        generator (torch.Generator, optional): Random generator on ``labels``' device.
            Defaults to torch's global generator.

    Returns:
        SegmentDraws: The drawn points (see :class:`SegmentDraws`).
    """
    flat = labels.reshape(labels.shape[0], -1).long()
    batch, num_px = flat.shape
    device = flat.device
    valid_px = flat != ignore_index
    sentinel = torch.iinfo(torch.int64).max
    # Stable sort per image: valid pixels first, grouped by segment id (ascending), each group
    # in increasing pixel order; ignored pixels last.
    keyed = torch.where(valid_px, flat, flat.new_full((), sentinel))
    sorted_ids, order = torch.sort(keyed, dim=1, stable=True)
    sorted_valid = sorted_ids != sentinel
    is_start = sorted_valid.clone()
    is_start[:, 1:] &= sorted_ids[:, 1:] != sorted_ids[:, :-1]
    rank = is_start.long().cumsum(1) - 1  # segment rank of every valid sorted position
    num_segments = is_start.sum(1)
    # Segment sizes by rank (column num_px collects the ignored pixels), then the offsets.
    slot = torch.where(sorted_valid, rank, rank.new_full((), num_px))
    counts = torch.zeros(batch, num_px + 1, dtype=torch.long, device=device)
    counts.scatter_add_(1, slot, torch.ones_like(slot))
    counts = counts[:, :num_px]
    starts = counts.cumsum(1) - counts
    seg_ids = sorted_ids.gather(1, starts.clamp(max=num_px - 1))

    num_segments_list = num_segments.tolist()  # the one host synchronisation
    most = max(num_segments_list, default=0)
    k = most if num_instances is None else min(num_instances, most)
    width = max(most, 1)
    k = max(k, 1)  # no segment anywhere: one padding segment, everything invalid
    r = num_resamples
    rand = torch.rand(batch, r * width + r * k * num_pixels, generator=generator, device=device)
    keys = rand[:, :r * width].view(batch, r, width)
    present = torch.arange(width, device=device) < num_segments[:, None, None]
    keys = torch.where(present, keys, keys.new_full((), 2.0))  # absent segments sort last
    chosen = keys.argsort(dim=2)[:, :, :k]  # (B, R, k): distinct segments, real ones first
    u = rand[:, r * width:].view(batch, r, k, num_pixels)
    size = counts.gather(1, chosen.flatten(1)).view(batch, r, k, 1)
    offset = torch.minimum((u * size).long(), size - 1).clamp_min(0)
    start = starts.gather(1, chosen.flatten(1)).view(batch, r, k, 1)
    position = (start + offset).clamp(max=num_px - 1).flatten(1)
    index = order.gather(1, position).view(batch, r, k * num_pixels)
    real = (chosen < num_segments[:, None, None]).unsqueeze(-1).expand(-1, -1, -1, num_pixels)
    real = real.reshape(batch, r, k * num_pixels)
    segment = seg_ids.gather(1, chosen.flatten(1)).view(batch, r, k, 1)
    segment = segment.expand(-1, -1, -1, num_pixels).reshape(batch, r, k * num_pixels)
    index = torch.where(real, index, index.new_zeros(()))
    segment = torch.where(real, segment, segment.new_full((), -1))
    return SegmentDraws(index, segment, real, num_segments, num_segments_list)
