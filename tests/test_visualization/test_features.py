# Copyright (c) mmaffseg contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmaffseg.visualization import features as F


def _naive_box_sum(x, r):
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    for i in range(h):
        for j in range(w):
            out[..., i, j] = x[..., max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].sum((-1, -2))
    return out


def _naive_guided_filter(guide, src, r, eps):
    """He et al.'s filter written window by window with explicit ridge regressions."""
    g, p = guide.numpy(), src.numpy()
    k, h, w = g.shape
    c = p.shape[0]
    a = np.zeros((h, w, k, c))
    b = np.zeros((h, w, c))
    for i in range(h):
        for j in range(w):
            win = np.s_[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            gi = g[(slice(None), ) + win].reshape(k, -1)
            pi = p[(slice(None), ) + win].reshape(c, -1)
            n = gi.shape[1]
            mu, mp = gi.mean(1), pi.mean(1)
            sigma = gi @ gi.T / n - np.outer(mu, mu) + eps * np.eye(k)
            a[i, j] = np.linalg.solve(sigma, gi @ pi.T / n - np.outer(mu, mp))
            b[i, j] = mp - a[i, j].T @ mu
    q = np.zeros((c, h, w))
    for i in range(h):
        for j in range(w):
            win = np.s_[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            ma = a[win].reshape(-1, k, c).mean(0)
            mb = b[win].reshape(-1, c).mean(0)
            q[:, i, j] = ma.T @ g[:, i, j] + mb
    return q


def test_box_sum_equals_naive():
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    for r in (0, 1, 3, 12):
        torch.testing.assert_close(F.box_sum(x, r), _naive_box_sum(x, r))


@pytest.mark.parametrize('channels,radius,eps', [(3, 2, 0.01), (1, 1, 0.1), (3, 4, 1e-3)])
def test_guided_filter_equals_naive_reference(channels, radius, eps):
    gen = torch.Generator().manual_seed(channels + radius)
    guide = torch.rand(1, channels, 9, 11, generator=gen, dtype=torch.float64)
    src = torch.randn(1, 5, 9, 11, generator=gen, dtype=torch.float64)
    out = F.guided_filter(guide, src, radius, eps, channel_chunk=2)
    np.testing.assert_allclose(out[0].numpy(), _naive_guided_filter(guide[0], src[0], radius,
                                                                     eps), atol=1e-10)


def test_guided_filter_preserves_edges_of_the_guide():
    guide = torch.zeros(1, 1, 20, 20)
    guide[..., 10:] = 1.0
    src = guide + 0.3 * torch.randn(1, 1, 20, 20, generator=torch.Generator().manual_seed(0))
    out = F.guided_filter(guide, src, radius=4, eps=1e-3)
    assert (out[..., :8] < 0.3).all() and (out[..., 12:] > 0.7).all()
    with pytest.raises(ValueError, match='same batch and size'):
        F.guided_filter(guide, src[..., :10])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_guided_filter_on_gpu_matches_cpu():
    guide, src = torch.rand(1, 3, 40, 50), torch.randn(1, 8, 40, 50)
    torch.testing.assert_close(
        F.guided_filter(guide.cuda(), src.cuda(), 5, 0.01).cpu(), F.guided_filter(guide, src, 5,
                                                                                   0.01),
        atol=1e-4, rtol=1e-4)


def test_pca_is_invariant_to_eigenvector_signs(monkeypatch):
    emb = torch.randn(6, 15, 17, generator=torch.Generator().manual_seed(0))
    emb[0] *= 3
    image = torch.rand(3, 15, 17, generator=torch.Generator().manual_seed(1))
    reference = F.visualize_embedding(emb, image, radius=2)
    eigh = torch.linalg.eigh

    def flipped_eigh(a):
        vals, vecs = eigh(a)
        return vals, vecs * torch.tensor([-1.0, 1.0] * (vecs.shape[1] // 2)).to(vecs)

    monkeypatch.setattr(torch.linalg, 'eigh', flipped_eigh)
    torch.testing.assert_close(F.visualize_embedding(emb, image, radius=2), reference)


def test_pca_basis_orders_components_by_variance():
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(500, 4, generator=gen, dtype=torch.float64) * torch.tensor(
        [1.0, 5.0, 0.1, 2.0], dtype=torch.float64)
    basis = F.pca_basis(points, 3)
    assert basis.abs().argmax(0).tolist() == [1, 3, 0]
    assert (basis.gather(0, basis.abs().argmax(0, keepdim=True)) > 0).all()


@pytest.mark.parametrize('method', ['pca', 'random'])
def test_visualization_range_and_shape(method):
    emb = 20 * torch.randn(8, 13, 21)  # values beyond the clamp
    out = F.visualize_embedding(emb, torch.rand(3, 13, 21), method=method, radius=3)
    assert out.shape == (3, 13, 21)
    assert torch.isfinite(out).all() and out.min() == 0 and out.max() == 1
    with pytest.raises(ValueError, match="method must be 'pca' or 'random'"):
        F.visualize_embedding(emb, method='tsne')


def test_random_projection_is_seeded():
    torch.testing.assert_close(F.random_basis(8, 3, seed=4), F.random_basis(8, 3, seed=4))
    assert not torch.equal(F.random_basis(8, 3, seed=4), F.random_basis(8, 3, seed=5))


def _naive_picture(emb, method, clamp=5.0, seed=0):
    """clamp -> project (PCA from numpy's SVD, largest entry of each direction positive; or
    the seeded Gaussian matrix) -> stretch each channel to [0, 1], without any filter."""
    feats = np.clip(emb.numpy().astype(np.float64), -clamp, clamp)
    c, h, w = feats.shape
    points = feats.reshape(c, -1).T
    centred = points - points.mean(0)
    if method == 'pca':
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        basis = vt[:3].T
        basis = basis * np.sign(basis[np.abs(basis).argmax(0), range(3)])
    else:
        gen = torch.Generator().manual_seed(seed)
        basis = torch.randn(c, 3, generator=gen).double().numpy()  # float32 draws
    out = (centred @ basis).T.reshape(3, h, w)
    lo = out.reshape(3, -1).min(1)[:, None, None]
    hi = out.reshape(3, -1).max(1)[:, None, None]
    return (out - lo) / (hi - lo)


@pytest.mark.parametrize('method', ['pca', 'random'])
def test_radius_zero_is_the_unfiltered_picture(method):
    gen = torch.Generator().manual_seed(7)
    emb = 4 * torch.randn(6, 11, 14, generator=gen) * torch.tensor(
        [3.0, 2.0, 1.0, 0.5, 0.2, 0.1]).view(6, 1, 1)  # distinct variances: a stable PCA
    image = torch.rand(3, 11, 14, generator=gen)
    # A one-pixel window: the guided filter returns its input (and the naive filter agrees).
    src = torch.randn(1, 6, 11, 14, generator=gen, dtype=torch.float64)
    guide = image[None].double()
    torch.testing.assert_close(F.guided_filter(guide, src, 0, 0.01), src)
    np.testing.assert_allclose(F.guided_filter(guide, src, 0, 0.01)[0].numpy(),
                               _naive_guided_filter(guide[0], src[0], 0, 0.01), atol=1e-10)
    expected = _naive_picture(emb, method)
    for guide_image in (image, None):  # radius 0 with a guide, or no guide at all
        out = F.visualize_embedding(emb, guide_image, method=method, radius=0)
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-4)
    # and a real radius does filter
    filtered = F.visualize_embedding(emb, image, method=method, radius=2)
    assert np.abs(filtered.numpy() - expected).max() > 0.05
