# Copyright (c) mmaffseg contributors. All rights reserved.
"""The batched pixel sampler of the N-pair L2 and instance-embedding losses: the same draws as
one image at a time, the documented distribution, one host synchronisation per batch whatever
its size, and the global batch mean under DDP."""
from collections import Counter

import pytest
import torch
from benchmarks.profiling import count_aten_ops
from gloo_processes import run_in_gloo_processes

from mmaffseg.models.losses import InstanceEmbeddingLoss, NPairL2Loss, npair_l2_pair_loss
from mmaffseg.models.utils.segment_sampling import sample_segment_pixels_batched


def _draw_one_image(labels, num_instances, num_pixels, num_resamples, gen, ignore=255):
    """One image, written out segment by segment: for every draw, R x S uniform keys choose the
    ``k`` segments with the smallest keys, then R x k x P uniforms pick ``floor(u * n)``-th pixel
    (in raster order) of each chosen segment of ``n`` pixels. (The generator is consumed as the
    former per-image sampler did.)"""
    flat = labels.reshape(-1).tolist()
    ids = sorted({v for v in flat if v != ignore})
    members = {s: [i for i, v in enumerate(flat) if v == s] for s in ids}
    k = min(num_instances, len(ids))
    keys = torch.rand(num_resamples, len(ids), generator=gen).tolist()
    u = torch.rand(num_resamples, k, num_pixels, generator=gen).tolist()
    index, segment = [], []
    for r in range(num_resamples):
        order = sorted(range(len(ids)), key=lambda s: keys[r][s])[:k]
        row_i, row_s = [], []
        for j, s in enumerate(order):
            pix = members[ids[s]]
            for p in range(num_pixels):
                row_i.append(pix[min(int(u[r][j][p] * len(pix)), len(pix) - 1)])
                row_s.append(ids[s])
        index.append(row_i)
        segment.append(row_s)
    return torch.tensor(index), torch.tensor(segment)


def _label_batch(num_images, num_segments, seed):
    """Label maps with ``num_segments`` segments each (ids and sizes random), 10 x 12 pixels."""
    gen = torch.Generator().manual_seed(seed)
    maps = []
    for _ in range(num_images):
        ids = torch.randperm(40, generator=gen)[:num_segments]
        lab = ids[torch.randint(0, num_segments, (10, 12), generator=gen)]
        lab[:, :num_segments] = ids  # every id present
        lab[torch.rand(10, 12, generator=gen) < 0.1] = 255
        maps.append(lab)
    return torch.stack(maps)


@pytest.mark.parametrize('num_instances', [3, None])
def test_batch_draws_equal_one_image_at_a_time_when_segment_counts_match(num_instances):
    labels = _label_batch(3, 5, seed=0)
    k = 5 if num_instances is None else num_instances
    drawn = sample_segment_pixels_batched(labels, num_instances, 7, 4,
                                          generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(1)
    for b in range(3):
        index, segment = _draw_one_image(labels[b], k, 7, 4, gen)
        assert torch.equal(drawn.index[b], index) and torch.equal(drawn.segment[b], segment)
    assert drawn.valid.all() and drawn.num_segments.tolist() == [5, 5, 5]


def test_npair_loss_of_a_batch_equals_the_images_one_by_one():
    labels = _label_batch(3, 4, seed=2)
    emb = torch.randn(3, 6, 10, 12, generator=torch.Generator().manual_seed(3))
    loss = NPairL2Loss(num_instances=3, num_pixels=9, num_resamples=2)
    value = loss(emb, labels, generator=torch.Generator().manual_seed(4))
    gen = torch.Generator().manual_seed(4)
    per_image = []
    for b in range(3):
        index, segment = _draw_one_image(labels[b], 3, 9, 2, gen)
        points = emb[b].flatten(1).t()[index]
        per_image.append(npair_l2_pair_loss(points, segment).mean())
    assert value.item() == pytest.approx(torch.stack(per_image).mean().item(), rel=1e-6)


def test_draws_follow_the_documented_distribution_when_counts_differ():
    # Image 0: 4 segments of 1, 2, 3 and 30 pixels; image 1: 2 segments; image 2: none.
    # Per draw, 3 of image 0's segments without replacement (each pair of draws distinct, every
    # segment in 3/4 of the draws, every 3-subset in 1/4), pixels uniform within a segment.
    labels = torch.full((3, 6, 6), 255)
    labels[0].view(-1)[:1] = 10
    labels[0].view(-1)[1:3] = 11
    labels[0].view(-1)[3:6] = 12
    labels[0].view(-1)[6:] = 13
    labels[1, :3] = 1
    labels[1, 3:] = 2
    num_draws, num_pixels = 4000, 4
    drawn = sample_segment_pixels_batched(labels, 3, num_pixels, num_draws,
                                          generator=torch.Generator().manual_seed(0))
    assert drawn.num_segments.tolist() == [4, 2, 0]
    assert torch.equal(labels.flatten(1).gather(1, drawn.index.flatten(1))[drawn.valid.flatten(1)],
                       drawn.segment[drawn.valid])  # every valid point lies in its segment
    chosen = drawn.segment[0, :, ::num_pixels]  # (R, 3) segments of image 0
    assert all(len(set(row)) == 3 for row in chosen.tolist())  # without replacement
    freq = torch.stack([(chosen == s).any(1) for s in (10, 11, 12, 13)]).float().mean(1)
    torch.testing.assert_close(freq, torch.full((4, ), 0.75), atol=0.025, rtol=0)
    subsets = Counter(tuple(sorted(row)) for row in chosen.tolist())
    assert len(subsets) == 4 and all(abs(n / num_draws - 0.25) < 0.025 for n in subsets.values())
    # pixels of the 30-pixel segment: uniform (each expected ~ 3/4 * 4000 * 4 / 30 = 400 times)
    hits = torch.bincount(drawn.index[0][drawn.segment[0] == 13] - 6, minlength=30).float()
    assert hits.sum() == pytest.approx(0.75 * num_draws * num_pixels, rel=0.03)
    chi2 = ((hits - hits.mean())**2 / hits.mean()).sum().item()
    assert chi2 < 60  # 29 degrees of freedom: P(chi2 > 60) < 1e-3
    # image 1: both segments in every draw, third column padding; image 2: all padding
    assert drawn.valid[1].view(num_draws, 3, num_pixels)[:, :2].all()
    assert not drawn.valid[1].view(num_draws, 3, num_pixels)[:, 2].any()
    assert not drawn.valid[2].any()
    assert (drawn.segment[1, :, :2 * num_pixels] > 0).all()


def test_npair_loss_in_expectation_equals_one_image_at_a_time_when_counts_differ():
    # Images with 5, 3 and 2 segments: the batch draws other pixels than the images drawn one by
    # one, from the same distribution, so the mean loss over many seeds agrees within its
    # standard error (the per-draw losses vary by ~10 %).
    labels = torch.cat([_label_batch(1, n, seed=n) for n in (5, 3, 2)])
    emb = torch.randn(3, 4, 10, 12, generator=torch.Generator().manual_seed(0))
    loss = NPairL2Loss(num_instances=3, num_pixels=4, num_resamples=1, min_segments=2)
    batched, one_by_one = [], []
    for seed in range(200):
        batched.append(loss(emb, labels, generator=torch.Generator().manual_seed(seed)).item())
        gen = torch.Generator().manual_seed(10_000 + seed)
        values = []
        for b in range(3):
            index, segment = _draw_one_image(labels[b], 3, 4, 1, gen)
            values.append(npair_l2_pair_loss(emb[b].flatten(1).t()[index], segment).mean())
        one_by_one.append(torch.stack(values).mean().item())
    batched, one_by_one = torch.tensor(batched), torch.tensor(one_by_one)
    stderr = ((batched.var() + one_by_one.var()) / 200).sqrt()
    assert abs(batched.mean() - one_by_one.mean()) < 4 * stderr
    assert batched.std() > 0.02 * batched.mean().abs()  # the draws do vary


def _instance_maps(num_images, seed):
    gen = torch.Generator().manual_seed(seed)
    maps = torch.randint(0, 6, (num_images, 16, 16), generator=gen)
    maps[:, :3] = 255
    return maps


@pytest.mark.parametrize('loss', [
    NPairL2Loss(num_pixels=20, num_resamples=3),
    InstanceEmbeddingLoss(num_points=5),
], ids=['npair', 'instance_embedding'])
def test_one_host_sync_per_batch_whatever_its_size(loss):
    # The former per-image sampler read the data (nonzero, unique) twice per image: 4 syncs
    # for 2 images, 8 for 4.
    syncs = []
    for num_images in (2, 4):
        emb = torch.randn(num_images, 8, 16, 16, requires_grad=True)
        maps = _instance_maps(num_images, seed=num_images)
        syncs.append(count_aten_ops(lambda e=emb, m=maps: loss(e, m).backward())[1])
    assert syncs == [1, 1]


# ------------------------------------------------------------------------------------ DDP
class _TinyEmbedding(torch.nn.Module):
    """A 1x1 convolution: per-pixel embeddings of fixed inputs, parameters DDP can average."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x)


def _ddp_batch():
    """4 images, 8 x 8; the inputs are constant inside each segment, so the loss does not
    depend on which pixels are drawn, and every segment is drawn. Shard 0 (images 0, 1): two
    contributing images; shard 1: one (image 3 is all void)."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(4, 8, 8, dtype=torch.long)
    labels[:, :, 4:] = 1
    labels[:, 5:, :] = 2
    labels[1, :2] = 3
    labels[3] = 255
    x = torch.randn(4, 3, 4, generator=gen)  # one input vector per image and segment
    x = x.gather(2, labels.clamp(max=3).view(4, 1, 64).expand(-1, 3, -1)).view(4, 3, 8, 8)
    return x, labels


def _losses_and_grads(model, x, labels, reduce_across_ranks):
    results = {}
    for name, loss_fn in (('npair', NPairL2Loss(num_instances=4, num_pixels=3, num_resamples=2,
                                                 min_segments=2,
                                                 reduce_across_ranks=reduce_across_ranks)),
                          ('emb', InstanceEmbeddingLoss(num_points=3,
                                                        reduce_across_ranks=reduce_across_ranks))):
        model.zero_grad()
        loss = loss_fn(model(x), labels)
        loss.backward()
        results[name] = (loss.detach(), [p.grad.clone() for p in model.parameters()])
    return results


def _ddp_worker(rank, world_size):
    from torch.nn.parallel import DistributedDataParallel
    x, labels = _ddp_batch()
    shard = slice(rank * 2, rank * 2 + 2)
    return {reduce: _losses_and_grads(DistributedDataParallel(_TinyEmbedding()), x[shard],
                                      labels[shard], reduce)
            for reduce in (True, False)}


def test_ddp_two_processes_match_the_single_process_batch(tmp_path):
    """2 gloo processes x 2 images: each rank's loss and the DDP-averaged gradients equal one
    process's on all 4 images (the mean over the 3 contributing images)."""
    x, labels = _ddp_batch()
    reference = _losses_and_grads(_TinyEmbedding(), x, labels, True)
    ranks = run_in_gloo_processes(_ddp_worker, tmp_path)
    for result in ranks:
        for name, (ref_loss, ref_grads) in reference.items():
            loss, grads = result[True][name]
            torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=0)
            for got, want in zip(grads, ref_grads):
                # the bias gradient is 0 up to rounding (distances ignore a shift)
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    # the per-rank mean weighs shard 1's single image as much as shard 0's two
    for name, (ref_loss, ref_grads) in reference.items():
        loss, grads = ranks[0][False][name]
        assert not torch.allclose(loss, ref_loss, rtol=1e-3)
        assert not torch.allclose(grads[0], ref_grads[0], rtol=1e-3)
