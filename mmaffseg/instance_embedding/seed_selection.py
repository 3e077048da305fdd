# Copyright (c) mmaffseg contributors. All rights reserved.
"""Greedy, diverse choice of seed pixels in an embedding.

Fathi, Wojna, Rathod, Wang, Song, Guadarrama and Murphy, "Semantic Instance Segmentation via
Deep Metric Learning", arXiv:1703.10277, 2017.

The first seed is the pixel of highest seediness ``S_p``; seed ``t`` then maximises::

    log S_p + alpha * log min_{earlier seeds q} D(p, q)

with ``D`` the Euclidean distance of the embeddings, so a pixel whose embedding (nearly)
coincides with an earlier seed's comes last, and a chosen pixel is never chosen again. Every
step is one vector operation over the pixels of all images of the batch; only the
``num_seeds`` steps are sequential.
"""
from typing import Tuple

import torch
from torch import Tensor

from ..ops.pairwise import pairwise_squared_distances


def select_seeds(embedding: Tensor,
                 seediness: Tensor,
                 valid: Tensor,
                 num_seeds: int = 100,
                 alpha: float = 0.3,
                 min_seediness: float = 1e-12) -> Tuple[Tensor, Tensor]:
    """Pick up to ``num_seeds`` diverse, confident seeds per image.

    Args:
        embedding (Tensor): Pixel embeddings (B, P, C).
        seediness (Tensor): Seediness (B, P), in [0, 1].
        valid (Tensor): Bool (B, P), pixels that may be seeds (e.g. not padding).
        num_seeds (int): Seeds per image (N). Defaults to 100.
        alpha (float): Weight of the diversity term. Defaults to 0.3.
        min_seediness (float): Lower clamp of ``S_p`` before the log. Defaults to 1e-12.

    Returns:
        tuple[Tensor, Tensor]: ``seeds`` (B, N) int64 flat pixel indices in the order chosen,
        and ``found`` (B, N) bool: False for the steps where no pixel was left (fewer valid
        pixels than N, or all remaining ones coincide with chosen seeds); their index is 0.
    """
    if embedding.dim() != 3 or seediness.shape != embedding.shape[:2] or \
            valid.shape != seediness.shape:
        raise ValueError(
            'select_seeds expects embedding (B, P, C), seediness (B, P) and valid (B, P), got '
            f'{tuple(embedding.shape)}, {tuple(seediness.shape)} and {tuple(valid.shape)}')
    if num_seeds < 1 or alpha < 0:
        raise ValueError(f'select_seeds needs num_seeds >= 1 and alpha >= 0, got {num_seeds} '
                         f'and {alpha}')
    batch = torch.arange(embedding.shape[0], device=embedding.device)
    log_s = seediness.clamp_min(min_seediness).log().masked_fill(~valid, float('-inf'))
    log_min_dist = torch.zeros_like(log_s)  # log D to the nearest chosen seed (0 before any)
    sq_norms = embedding.float().pow(2).sum(-1)  # (B, P) float32, reused by every step
    seeds, found = [], []
    for step in range(num_seeds):
        score = log_s + alpha * log_min_dist if alpha > 0 else log_s
        best_score, best = score.max(1)
        ok = best_score > float('-inf')
        seeds.append(torch.where(ok, best, torch.zeros_like(best)))
        found.append(ok)
        # Pixels at the chosen seed can never be chosen again (needed when alpha == 0).
        log_s[batch, best] = float('-inf')
        if step + 1 < num_seeds:
            sq = pairwise_squared_distances(embedding, embedding[batch, best][:, None], sq_norms)
            log_dist = 0.5 * torch.log(sq[..., 0])  # log D, -inf where D == 0
            log_min_dist = log_dist if step == 0 else torch.minimum(log_min_dist, log_dist)
    return torch.stack(seeds, 1), torch.stack(found, 1)
