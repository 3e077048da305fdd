# Copyright (c) mmaffseg contributors. All rights reserved.
"""AffinityNet's balanced pair loss against the PSA golden loss case."""
import pytest
import torch
from gloo_processes import run_in_gloo_processes
from golden import assert_close, case_paths, load_case
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.models.losses import AffinityPairLoss, affinity_pair_loss
from mmaffseg.ops import affinity_pair_labels

LOSS_CASES = case_paths('psa', 'aff_loss_*')


def test_loss_fixtures_exist():
    assert LOSS_CASES


@pytest.mark.parametrize('path', LOSS_CASES, ids=lambda p: p.split('/')[-1])
def test_golden_loss_terms_and_gradient(path):
    case = load_case(path)
    aff = torch.from_numpy(case.inputs['aff']).requires_grad_()
    masks = [torch.from_numpy(case.inputs[k]) for k in ('bg_label', 'fg_label', 'neg_label')]
    loss_module = MODELS.build(dict(type='AffinityPairLoss', **case.meta['ctor']))
    loss = loss_module(aff, *masks)
    loss.backward()
    for name, term in zip(('bg_loss', 'fg_loss', 'neg_loss'), affinity_pair_loss(aff, *masks)):
        assert_close(case, name, term)
    assert_close(case, 'loss', loss)
    assert_close(case, 'grad_aff', aff.grad)
    # the stored pair masks are what our label extraction gives for the stored label maps
    labels = torch.from_numpy(case.inputs['label_maps'])
    for ours, theirs in zip(affinity_pair_labels(labels), masks):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_weights_name_and_empty_sets():
    aff = torch.full((1, 2, 3), 0.5)
    ones, zeros = torch.ones_like(aff), torch.zeros_like(aff)
    loss = AffinityPairLoss(term_weights=(1, 0, 0), loss_weight=2., loss_name='loss_x')
    assert loss.loss_name == 'loss_x'
    expected = -2 * torch.log(torch.tensor(0.5 + 1e-5))
    torch.testing.assert_close(loss(aff, ones, zeros, zeros), expected, rtol=1e-5, atol=0)
    # an empty set contributes 0, not NaN (the 1e-5 guard of the count)
    assert AffinityPairLoss()(aff, zeros, zeros, zeros) == 0


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match=r'fg_pos must have the shape of aff \(1, 2, 3\)'):
        affinity_pair_loss(torch.rand(1, 2, 3), torch.ones(1, 2, 3), torch.ones(2, 3),
                           torch.ones(1, 2, 3))
    with pytest.raises(ValueError, match='term_weights needs 3 values'):
        AffinityPairLoss(term_weights=(1, 1))


# ------------------------------------------------------------------------ DDP normalisation
class _TinyAffinityNet(torch.nn.Module):
    """Affinities ``sigmoid(x * w_k + b)`` of fixed inputs: parameters DDP can average."""

    def __init__(self, num_offsets: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(-1., 1., num_offsets)[:, None])
        self.b = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return torch.sigmoid(x * self.w + self.b)


def _ddp_batch():
    """8 images whose pair counts differ a lot between the two halves (the two shards)."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (8, 12, 14), generator=gen)
    labels[:4] = 0  # first shard: background, one small object, some unknown -> few negatives
    labels[:4, 3, 6] = 7
    labels[:4, 9:] = 255
    labels[4:6, :, :7] = 0  # second shard: random classes (many negatives), some background
    pair_masks = affinity_pair_labels(labels, radius=5)
    x = torch.randn(pair_masks[0].shape, generator=gen)
    return x, pair_masks


def _loss_and_grads(model, x, masks, reduce_across_ranks=True):
    loss = AffinityPairLoss(reduce_across_ranks=reduce_across_ranks)(model(x), *masks)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def _ddp_worker(rank, world_size):
    from torch.nn.parallel import DistributedDataParallel
    x, masks = _ddp_batch()
    shard = slice(rank * 4, rank * 4 + 4)  # 2 processes x 4 images
    results = {}
    for reduce_across_ranks in (True, False):
        model = DistributedDataParallel(_TinyAffinityNet(x.shape[1]))
        results[reduce_across_ranks] = _loss_and_grads(
            model, x[shard], [m[shard] for m in masks], reduce_across_ranks)
    return results


def test_ddp_two_processes_match_the_single_process_batch(tmp_path):
    """2 gloo processes x 4 images: the loss on each rank and the DDP-averaged gradient equal
    one process's loss and gradient on all 8 images (the reference's batch)."""
    x, masks = _ddp_batch()
    counts = [[int(m[s].sum()) for m in masks] for s in (slice(0, 4), slice(4, 8))]
    assert counts[0][2] * 5 < counts[1][2]  # the shards' negative-pair counts differ a lot
    ref_loss, ref_grads = _loss_and_grads(_TinyAffinityNet(x.shape[1]), x, masks)
    ranks = run_in_gloo_processes(_ddp_worker, tmp_path)
    for result in ranks:
        loss, grads = result[True]
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
        for got, want in zip(grads, ref_grads):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8)
    # per-process normalisation (the old behaviour) gives another loss and gradient
    local_loss, local_grads = ranks[0][False]
    assert not torch.allclose(local_loss, ref_loss, rtol=1e-3)
    assert not torch.allclose(local_grads[0], ref_grads[0], rtol=1e-3)


def test_one_process_is_unchanged_by_the_reduction():
    x, masks = _ddp_batch()
    model = _TinyAffinityNet(x.shape[1])
    loss_a, grads_a = _loss_and_grads(model, x, masks, reduce_across_ranks=True)
    model.zero_grad()
    loss_b, grads_b = _loss_and_grads(model, x, masks, reduce_across_ranks=False)
    assert torch.equal(loss_a, loss_b)
    for a, b in zip(grads_a, grads_b):
        assert torch.equal(a, b)
