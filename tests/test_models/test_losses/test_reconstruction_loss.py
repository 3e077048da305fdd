# Copyright (c) mmaffseg contributors. All rights reserved.
"""Reconstruction MSE loss with a validity mask."""
import pytest
import torch

from mmaffseg.models.losses import ReconstructionMSELoss
from mmaffseg.models.losses.reconstruction_loss import masked_mse_loss


def test_masked_mse_counts_only_valid_pixels_per_sample():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 3, 4, 5, generator=g)
    target = torch.randn(2, 3, 4, 5, generator=g)
    mask = torch.zeros(2, 1, 4, 5)
    mask[0, :, :3, :4] = 1  # sample 0 padded bottom/right
    mask[1] = 1
    per_sample = masked_mse_loss(pred, target, mask)
    ref0 = ((pred[0, :, :3, :4] - target[0, :, :3, :4])**2).mean()
    ref1 = ((pred[1] - target[1])**2).mean()
    torch.testing.assert_close(per_sample, torch.stack([ref0, ref1]))
    torch.testing.assert_close(masked_mse_loss(pred, target), ((pred - target)**2).mean((1, 2, 3)))
    assert masked_mse_loss(pred, target, torch.zeros(2, 1, 4, 5)).abs().sum() == 0


def test_reconstruction_loss_weight_reduction_and_errors():
    pred, target = torch.ones(2, 3, 2, 2), torch.zeros(2, 3, 2, 2)
    loss = ReconstructionMSELoss(loss_weight=0.1)
    assert loss(pred, target).item() == pytest.approx(0.1)
    assert loss(pred, target, reduction_override='sum').item() == pytest.approx(0.2)
    assert loss.loss_name == 'loss_sr'
    with pytest.raises(ValueError, match=r'same shape, got \(2, 3, 2, 2\) and \(2, 3, 2, 1\)'):
        loss(pred, target[..., :1])
    with pytest.raises(ValueError, match="reduction must be"):
        ReconstructionMSELoss(reduction='max')
