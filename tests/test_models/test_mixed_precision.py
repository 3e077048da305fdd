# Copyright (c) mmaffseg contributors. All rights reserved.
"""Losses and pairwise ops under mixed precision (CPU ``torch.autocast`` in bfloat16 and
float16, and half-precision inputs), each against a float64 computation written out naively:
the context prior loss, the context prior head's intra / inter-class contexts, pairwise
distances, mask IoU by matrix product, the DSRL feature affinity loss (a sum over N^2 pairs)
and the AffinityNet pair loss."""
import pytest
import torch

from mmaffseg.models.decode_heads.cp_head import prior_contexts
from mmaffseg.models.losses import (
    AffinityPairLoss,
    FeatureAffinityLoss,
    context_prior_loss,
    context_prior_loss_materialised,
)
from mmaffseg.ops.pairwise import (
    pairwise_cosine_similarity,
    pairwise_mask_iou,
    pairwise_squared_distances,
)
from mmaffseg.ops.precision import autocast_disabled, float32_math

HALF = [torch.bfloat16, torch.float16]


def _naive_sq_dist(x: torch.Tensor) -> torch.Tensor:
    """|x_i - x_j|^2 in float64 from the differences, no expansion."""
    x = x.double()
    return (x[..., :, None, :] - x[..., None, :, :]).pow(2).sum(-1)


@pytest.mark.parametrize('dtype', HALF)
def test_float32_math_turns_autocast_off_and_upcasts(dtype):
    seen = {}

    @float32_math
    def product(a, b, *, scale):
        seen['autocast'] = torch.is_autocast_enabled('cpu')
        seen['dtypes'] = (a.dtype, b.dtype)
        return scale * (a @ b)

    a = torch.randn(3, 4, dtype=dtype, requires_grad=True)
    b = torch.randn(4, 2)
    with torch.autocast('cpu', dtype=dtype):
        assert torch.is_autocast_enabled('cpu')
        out = product(a, b, scale=2.0)
        with autocast_disabled():
            assert not torch.is_autocast_enabled('cpu')
        assert torch.is_autocast_enabled('cpu')  # restored on exit
    assert seen == {'autocast': False, 'dtypes': (torch.float32, torch.float32)}
    assert out.dtype == torch.float32
    out.sum().backward()
    assert a.grad.dtype == dtype  # gradients flow back through the upcast
    torch.testing.assert_close(out, 2.0 * (a.detach().double() @ b.double()).float())


@pytest.mark.parametrize('form', ['official', 'paper'])
@pytest.mark.parametrize('dtype', HALF)
def test_context_prior_loss_under_autocast_matches_float64(dtype, form):
    """Used to crash: autocast ran the loss's products in half precision and index_copy_ into
    float32 buffers failed ("expected ... same dtype")."""
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 5, (2, 48), generator=g)
    label[0, :3] = 255
    logits = 4 * torch.randn(2, 48, 48, generator=g)
    logits[0, 0, 20] = 12.0  # a saturated cell
    prior = logits.sigmoid().requires_grad_()
    with torch.autocast('cpu', dtype=dtype):
        loss = context_prior_loss(prior, label, form=form)
    assert loss.dtype == torch.float32
    (loss * 65536).backward()  # as under GradScaler's initial scale
    ref_prior = prior.detach().double().requires_grad_()  # the same values, in float64
    ref = context_prior_loss_materialised(ref_prior, label, form=form)
    (ref * 65536).backward()
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    assert torch.isfinite(prior.grad).all()
    torch.testing.assert_close(prior.grad.double(), ref_prior.grad, rtol=1e-3,
                               atol=1e-4 * float(ref_prior.grad.abs().max()))


@pytest.mark.parametrize('dtype', HALF)
def test_context_prior_loss_of_half_precision_prior_map(dtype):
    g = torch.Generator().manual_seed(1)
    label = torch.randint(0, 3, (1, 30), generator=g)
    prior = torch.rand(1, 30, 30, generator=g).to(dtype).requires_grad_()
    loss = context_prior_loss(prior, label)
    loss.backward()
    assert loss.dtype == torch.float32 and prior.grad.dtype == dtype
    ref = context_prior_loss_materialised(prior.detach().float(), label)  # exact values
    assert float(loss.detach()) == pytest.approx(float(ref), rel=1e-5)


@pytest.mark.parametrize('dtype', HALF)
def test_prior_contexts_of_a_dominant_class_under_autocast(dtype):
    """90 % of the cells in one class, P close to the ideal affinity: ``(1 - P) V`` of those
    rows is ~10 % of ``sum_j V_j``. Used to be ``mean V - P V / N`` in half precision too:
    2.6 % off on those rows in bfloat16 (a bfloat16 product is good to ~0.4 %)."""
    g = torch.Generator().manual_seed(4)
    batch, n, c = 2, 512, 32
    label = torch.zeros(batch, n, dtype=torch.long)
    label[:, :n // 10] = 1
    same = (label[:, :, None] == label[:, None, :]).float()
    prior = 0.01 + 0.98 * same
    value = torch.rand(batch, n, c, generator=g) + 0.5  # post-ReLU-like features
    ref_inter = torch.bmm(1 - prior.double(), value.double()) / n
    ref_intra = torch.bmm(prior.double(), value.double()) / n
    with torch.autocast('cpu', dtype=dtype):
        intra, inter = prior_contexts(prior, value)
    rows = label[0] == 0

    def rel(x, ref):
        return float((x[0][rows].double() - ref[0][rows]).norm() / ref[0][rows].norm())

    tol = 5e-3 if dtype == torch.bfloat16 else 1e-3
    assert rel(inter, ref_inter) < tol and rel(intra, ref_intra) < tol
    # float32: one product, the difference is exact enough
    intra, inter = prior_contexts(prior, value)
    torch.testing.assert_close(inter.double(), ref_inter, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(intra.double(), ref_intra, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('dtype', HALF)
def test_squared_distances_of_half_inputs_match_float64(dtype):
    """float16 cross term: errors up to ~0.4 at |x|^2 ~ 300 (the diagonal should be 0)."""
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(2, 64, 32, generator=g)).to(dtype)  # |x|^2 ~ 290
    ref = _naive_sq_dist(x)  # exact for the half-precision values
    got = pairwise_squared_distances(x)
    assert got.dtype == torch.float32
    # float32 expansion: cancellation error ~ |x|^2 * 2^-24 * a few
    torch.testing.assert_close(got.double(), ref, rtol=0, atol=1e-3)
    # the same float32 inputs inside an autocast region (the matmul is autocast's)
    with torch.autocast('cpu', dtype=dtype):
        got = pairwise_squared_distances(x.float())
    torch.testing.assert_close(got.double(), ref, rtol=0, atol=1e-3)


def test_squared_distances_do_not_overflow_in_float16():
    """Products above 65504 used to overflow to inf and the distance became 0 or NaN."""
    x = torch.tensor([[200., 0., 0.], [0., 250., 0.], [150., 150., 10.]], dtype=torch.float16)
    got = pairwise_squared_distances(x)
    torch.testing.assert_close(got.double(), _naive_sq_dist(x), rtol=1e-6, atol=1e-3)
    with torch.autocast('cpu', dtype=torch.float16):
        got = pairwise_squared_distances(x.float())
    torch.testing.assert_close(got.double(), _naive_sq_dist(x), rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize('dtype', HALF)
def test_cosine_similarity_under_autocast_is_float32(dtype):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(50, 16, generator=g)
    with torch.autocast('cpu', dtype=dtype):
        sim = pairwise_cosine_similarity(x)
    assert sim.dtype == torch.float32
    xd = x.double() / x.double().norm(dim=1, keepdim=True)
    torch.testing.assert_close(sim.double(), xd @ xd.t(), rtol=0, atol=1e-6)


@pytest.mark.parametrize('dtype', HALF)
def test_mask_iou_over_65504_pixels(dtype):
    """Pixel counts above 65504 are inf in float16 and rounded in bfloat16."""
    masks = torch.zeros(3, 300 * 300, dtype=torch.bool)
    masks[0, :90001] = True
    masks[1, 1:70000] = True
    masks[2, 50000:] = True
    with torch.autocast('cpu', dtype=dtype):
        iou = pairwise_mask_iou(masks)
    a = masks.double()
    inter = a @ a.t()
    ref = inter / (a.sum(1, keepdim=True) + a.sum(1) - inter)
    assert iou.dtype == torch.float32
    torch.testing.assert_close(iou.double(), ref, rtol=1e-6, atol=0)


def test_feature_affinity_loss_under_float16_autocast():
    """The sum over N^2 = 16.7M pairs used to reach inf in float16."""
    g = torch.Generator().manual_seed(3)
    seg, sr = torch.randn(1, 8, 64, 64, generator=g), torch.randn(1, 8, 64, 64, generator=g)
    loss_fn = FeatureAffinityLoss(subsample_factor=1)
    ref = loss_fn(seg.double(), sr.double())
    seg.requires_grad_()
    with torch.autocast('cpu', dtype=torch.float16):
        loss = loss_fn(seg, sr)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(seg.grad).all()
    assert float(loss.detach()) == pytest.approx(float(ref), rel=1e-5)


@pytest.mark.parametrize('dtype', HALF)
def test_affinity_pair_loss_of_half_precision_affinities(dtype):
    """``1 + 1e-5`` rounds to 1 in half precision: log(0) for a negative pair of affinity 1."""
    aff = torch.tensor([[1.0, 0.5, 0.25, 1.0]], dtype=dtype, requires_grad=True)
    bg = torch.tensor([[0., 1., 0., 0.]], dtype=dtype)
    fg = torch.tensor([[0., 0., 1., 0.]], dtype=dtype)
    neg = torch.tensor([[1., 0., 0., 1.]], dtype=dtype)
    loss_fn = AffinityPairLoss()
    loss = loss_fn(aff, bg, fg, neg)
    ref = loss_fn(aff.detach().double(), bg.double(), fg.double(), neg.double())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(aff.grad).all()
    # float32 itself rounds 1 + 1e-5 - 1 to 1.0013e-5 (log off by 1.3e-3 on that pair)
    assert float(loss.detach()) == pytest.approx(float(ref), rel=1e-3)
