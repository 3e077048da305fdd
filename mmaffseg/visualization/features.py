# Copyright (c) mmaffseg contributors. All rights reserved.
"""Turn a per-pixel embedding into an RGB picture, as Semantic Soft Segmentation shows them.

Aksoy, Oh, Paris, Pollefeys and Matusik, "Semantic Soft Segmentation", ACM Transactions on
Graphics (Proc. SIGGRAPH), 2018. The guided filter is He, Sun and Tang, "Guided Image
Filtering", ECCV 2010 / TPAMI 2013.

Pipeline (:func:`visualize_embedding`): clamp the features to ``[-5, 5]``; smooth every channel
with a guided filter steered by the image (radius 10, eps 0.01, image in ``[0, 1]``); project to
3 channels per image, by PCA (sign fixed, see :func:`canonical_signs`) or by a fixed random
Gaussian matrix; stretch each channel to ``[0, 1]``.

Everything is vectorised torch and runs on whichever device the tensors are on. The guided
filter costs O(pixels) per channel: window sums come from two cumulative sums, whatever the
radius.
"""
from typing import Optional

import torch
from torch import Tensor


def box_sum(x: Tensor, radius: int) -> Tensor:
    """Sum over the ``(2r+1) x (2r+1)`` window around every pixel, clipped at the border.

    Args:
        x (Tensor): Input of shape (..., H, W).
        radius (int): Window radius r >= 0.

    Returns:
        Tensor: Window sums, same shape as ``x``.
    """
    out = x
    for dim in (-2, -1):
        n = out.shape[dim]
        zero = torch.zeros_like(out.narrow(dim, 0, 1))
        c = torch.cat([zero, out.cumsum(dim)], dim)  # c[i] = sum of the first i entries
        idx = torch.arange(n, device=x.device)
        hi = (idx + radius + 1).clamp_max(n)
        lo = (idx - radius).clamp_min(0)
        out = c.index_select(dim, hi) - c.index_select(dim, lo)
    return out


def guided_filter(guide: Tensor,
                  src: Tensor,
                  radius: int = 10,
                  eps: float = 0.01,
                  channel_chunk: int = 16) -> Tensor:
    """Edge-preserving smoothing of ``src`` steered by ``guide`` (He et al.).

    For every window w_k a local linear model ``q = a_k^T I + b_k`` is fitted by ridge regression
    (``a_k = (Sigma_k + eps Id)^-1 cov_k(I, p)``, ``b_k = mean_k(p) - a_k^T mean_k(I)``); the
    output averages the models of all windows covering a pixel. A multi-channel guide uses the
    full colour covariance. Windows are clipped at the border (means over the pixels inside).

    Args:
        guide (Tensor): Guide image, shape (B, K, H, W) (K = 3 for RGB in [0, 1], or 1).
        src (Tensor): Channels to filter, shape (B, C, H, W).
        radius (int): Window radius. Defaults to 10.
        eps (float): Regulariser; larger is smoother. Defaults to 0.01.
        channel_chunk (int): Source channels filtered at once (bounds memory to
            ``K * channel_chunk`` maps). Defaults to 16.

    Returns:
        Tensor: Filtered channels, shape (B, C, H, W).
    """
    if guide.dim() != 4 or src.dim() != 4 or guide.shape[0] != src.shape[0] \
            or guide.shape[-2:] != src.shape[-2:]:
        raise ValueError('guided_filter expects guide (B, K, H, W) and src (B, C, H, W) of the '
                         f'same batch and size, got {tuple(guide.shape)} and '
                         f'{tuple(src.shape)}')
    src = src.to(guide.dtype)
    k = guide.shape[1]
    count = box_sum(torch.ones_like(guide[:1, :1]), radius)  # (1, 1, H, W)

    def mean(x: Tensor) -> Tensor:
        return box_sum(x, radius) / count

    mu = mean(guide)  # (B, K, H, W)
    # Sigma + eps Id per pixel, inverted once: (B, H, W, K, K).
    outer = guide.unsqueeze(2) * guide.unsqueeze(1)  # (B, K, K, H, W)
    sigma = mean(outer) - mu.unsqueeze(2) * mu.unsqueeze(1)
    sigma = sigma.permute(0, 3, 4, 1, 2) + eps * torch.eye(k, dtype=guide.dtype,
                                                          device=guide.device)
    sigma_inv = torch.linalg.inv(sigma)

    out = []
    for p in src.split(channel_chunk, dim=1):  # (B, c, H, W)
        mu_p = mean(p)
        cov = mean(guide.unsqueeze(2) * p.unsqueeze(1)) - mu.unsqueeze(2) * mu_p.unsqueeze(1)
        # a = Sigma^-1 cov: (B, H, W, K, K) @ (B, H, W, K, c) -> (B, K, c, H, W)
        a = (sigma_inv @ cov.permute(0, 3, 4, 1, 2)).permute(0, 3, 4, 1, 2)
        b = mu_p - (a * mu.unsqueeze(2)).sum(1)
        out.append((mean(a) * guide.unsqueeze(2)).sum(1) + mean(b))
    return torch.cat(out, dim=1)


def canonical_signs(basis: Tensor) -> Tensor:
    """Fix the sign of each column so that its largest-magnitude entry is positive.

    Eigenvectors are defined up to sign; this makes PCA colours independent of the solver.

    Args:
        basis (Tensor): Column vectors, shape (C, n).

    Returns:
        Tensor: ``basis`` with some columns negated.
    """
    pivot = basis.abs().argmax(dim=0)
    sign = torch.sign(basis.gather(0, pivot.unsqueeze(0)))
    return basis * torch.where(sign == 0, torch.ones_like(sign), sign)


def pca_basis(points: Tensor, num_components: int = 3) -> Tensor:
    """Leading principal directions of a point set, sign-canonical.

    Args:
        points (Tensor): Shape (N, C).
        num_components (int): Number of directions. Defaults to 3.

    Returns:
        Tensor: Shape (C, num_components), by decreasing variance.
    """
    centred = points - points.mean(0, keepdim=True)
    cov = centred.t() @ centred / max(points.shape[0], 1)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    return canonical_signs(vecs[:, -num_components:].flip(1))


def project(feats: Tensor, basis: Tensor) -> Tensor:
    """Project centred features onto a basis.

    Args:
        feats (Tensor): Shape (C, H, W).
        basis (Tensor): Shape (C, n).

    Returns:
        Tensor: Shape (n, H, W).
    """
    points = feats.flatten(1).t()
    out = (points - points.mean(0, keepdim=True)) @ basis
    return out.t().reshape(basis.shape[1], *feats.shape[1:])


def random_basis(num_channels: int, num_components: int = 3, seed: int = 0,
                 dtype: torch.dtype = torch.float32,
                 device: Optional[torch.device] = None) -> Tensor:
    """A fixed Gaussian projection matrix (the official code's quick visualisation).

    Args:
        num_channels (int): Feature channels C.
        num_components (int): Output channels. Defaults to 3.
        seed (int): Seed; the same seed gives the same colours for every image. Defaults to 0.
        dtype (torch.dtype): Dtype. Defaults to float32.
        device (torch.device, optional): Device. Defaults to CPU.

    Returns:
        Tensor: Shape (C, num_components).
    """
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num_channels, num_components, generator=gen, dtype=dtype).to(device)


def minmax_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Stretch each channel of (n, H, W) to [0, 1] (a constant channel becomes 0)."""
    lo = x.flatten(1).min(1).values.view(-1, 1, 1)
    hi = x.flatten(1).max(1).values.view(-1, 1, 1)
    return (x - lo) / (hi - lo).clamp_min(eps)


def visualize_embedding(embedding: Tensor,
                        image: Optional[Tensor] = None,
                        method: str = 'pca',
                        radius: int = 10,
                        eps: float = 0.01,
                        clamp: float = 5.0,
                        seed: int = 0) -> Tensor:
    """RGB picture of one image's embedding.

    Args:
        embedding (Tensor): Features of shape (C, H, W).
        image (Tensor, optional): Guide image (3, H, W) in [0, 1]; ``None`` skips the guided
            filter.
        method (str): ``'pca'`` or ``'random'`` projection. Defaults to ``'pca'``.
        radius (int): Guided-filter radius. Defaults to 10.
        eps (float): Guided-filter regulariser. Defaults to 0.01.
        clamp (float): Features are clamped to ``[-clamp, clamp]`` first. Defaults to 5.
        seed (int): Seed of the random projection. Defaults to 0.

    Returns:
        Tensor: (3, H, W) float in [0, 1].
    """
    if method not in ('pca', 'random'):
        raise ValueError(f"method must be 'pca' or 'random', got {method!r}")
    feats = embedding.float().clamp(-clamp, clamp)
    if image is not None:
        if image.shape[-2:] != feats.shape[-2:]:
            raise ValueError(f'image {tuple(image.shape)} and embedding {tuple(feats.shape)} '
                             'must have the same height and width')
        feats = guided_filter(image[None].to(feats), feats[None], radius, eps)[0]
    if method == 'pca':
        basis = pca_basis(feats.flatten(1).t(), 3)
    else:
        basis = random_basis(feats.shape[0], 3, seed, feats.dtype, feats.device)
    return minmax_normalize(project(feats, basis))
