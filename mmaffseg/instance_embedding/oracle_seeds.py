# Copyright (c) mmaffseg contributors. All rights reserved.
"""How good could the masks of an instance embedding be with perfect seeds?

For Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance Segmentation via
Deep Metric Learning", arXiv:1703.10277, 2017: a predicted instance is a mask
``m(p, tau) = {q : sigma(p, q) >= tau}`` grown from a seed ``p``. The *oracle seed* of a ground
truth instance is the pixel of that instance and the tau whose grown mask has the highest IoU
with it. Its IoU bounds what seed selection and the seediness classifier can reach with this
embedding, which separates a weak embedding from a weak classifier
(``tools/analysis_tools/instance_embedding_diagnostics.py``).
"""
from typing import Tuple

import torch
from torch import Tensor

from .targets import grown_mask_ious


def oracle_seeds(embedding: Tensor,
                 instance_map: Tensor,
                 ids: Tensor,
                 taus: Tensor,
                 ignore_index: int = 255) -> Tuple[Tensor, Tensor, Tensor]:
    """Best seed pixel and tau of every listed GT instance, searched over its own pixels.

    Args:
        embedding (Tensor): Embedding (C, h, w).
        instance_map (Tensor): Instance ids (h, w) at the embedding's size; ``ignore_index`` is
            void (left out of every mask and IoU).
        ids (Tensor): The n instance ids to evaluate, shape (n,).
        taus (Tensor): Thresholds, shape (T,).
        ignore_index (int): Void id. Defaults to 255.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``iou`` (n,) float, the best IoU (0 for an id with no
        pixel), ``tau_index`` (n,) int64 and ``pixel`` (n,) int64, the flat index of that seed
        (-1 for an id with no pixel).
    """
    flat = instance_map.reshape(-1)
    n = ids.numel()
    best_iou = embedding.new_zeros(n)
    best_tau = torch.zeros(n, dtype=torch.long, device=embedding.device)
    best_pixel = torch.full((n, ), -1, dtype=torch.long, device=embedding.device)
    for k, inst_id in enumerate(ids.tolist()):
        index = (flat == inst_id).nonzero().squeeze(1)
        if index.numel() == 0:
            continue
        iou = grown_mask_ious(embedding, instance_map, ids[k:k + 1], index, taus,
                              ignore_index)[..., 0]  # (T, S)
        value, arg = iou.flatten().max(0)
        best_iou[k] = value
        best_tau[k] = arg // index.numel()
        best_pixel[k] = index[arg % index.numel()]
    return best_iou, best_tau, best_pixel
