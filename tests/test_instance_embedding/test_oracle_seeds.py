# Copyright (c) mmaffseg contributors. All rights reserved.
import torch

from mmaffseg.instance_embedding import oracle_seeds

TAUS = torch.tensor([0.25, 0.5, 0.75, 0.9])


def _embedding(points, shape=(4, 6)):
    """A 2-d embedding (2, h, w), 0 except for [(row slice, col slice, (x, y)), ...]."""
    emb = torch.zeros(2, *shape)
    for rows, cols, value in points:
        emb[:, rows, cols] = torch.tensor(value, dtype=torch.float32)[:, None, None]
    return emb


def test_separated_instances_are_recovered_exactly():
    inst = torch.zeros(4, 6, dtype=torch.long)
    inst[:2, :3], inst[2:, 3:] = 1, 2
    emb = _embedding([(slice(0, 2), slice(0, 3), (5, 0)), (slice(2, 4), slice(3, 6), (0, 5))])
    iou, tau, pixel = oracle_seeds(emb, inst, torch.tensor([1, 2]), TAUS)
    torch.testing.assert_close(iou, torch.ones(2))
    assert inst.reshape(-1)[pixel].tolist() == [1, 2]
    assert tau.tolist() == [0, 0]  # the first tau reaching the best IoU


def test_split_instance_and_void_and_missing_ids():
    inst = torch.zeros(4, 6, dtype=torch.long)
    inst[:, :4] = 1  # 16 pixels, embedded as two far-apart halves of 8
    inst[0, 5] = 255  # void, embedded like the left half: never counted
    emb = _embedding([(slice(0, 4), slice(0, 2), (5, 0)), (slice(0, 4), slice(2, 4), (0, 5)),
                      (slice(0, 1), slice(5, 6), (5, 0))])
    iou, _, pixel = oracle_seeds(emb, inst, torch.tensor([1, 7]), TAUS)
    torch.testing.assert_close(iou, torch.tensor([0.5, 0.0]))
    assert pixel[1] == -1 and inst.reshape(-1)[pixel[0]] == 1
    # a tau that merges both halves (sigma = 2 / (1 + e^50) is tiny: no tau here does)
    close = _embedding([(slice(0, 4), slice(0, 2), (0.3, 0)),
                        (slice(0, 4), slice(2, 4), (0, 0.3))])
    iou, tau, _ = oracle_seeds(close, inst, torch.tensor([1]), TAUS)
    # d2 = 0.18, sigma = 0.91: every tau up to 0.9 grows the whole instance (and the background,
    # embedded at the origin with d2 = 0.09, sigma 0.955): IoU = 16 / 23 over valid pixels
    torch.testing.assert_close(iou, torch.tensor([16 / 23]))
