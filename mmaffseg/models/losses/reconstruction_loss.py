# Copyright (c) mmaffseg contributors. All rights reserved.
"""Image reconstruction (super-resolution) MSE loss, as used by DSRL's SISR branch.

Reference:
    Li Wang, Dong Li, Yousong Zhu, Lu Tian, Yi Shan. "Dual Super-Resolution Learning for
    Semantic Segmentation". CVPR 2020.

mmseg 1.x ships no mean-squared-error loss, hence this one. It takes an optional validity mask so
that the padding the data preprocessor adds to a batch (bottom and right) is not reconstructed.
"""
from typing import Optional

import torch.nn as nn
from mmseg.models.losses.utils import weight_reduce_loss
from mmseg.registry import MODELS
from torch import Tensor


def masked_mse_loss(pred: Tensor, target: Tensor, valid_mask: Optional[Tensor] = None) -> Tensor:
    """Per-sample mean squared error over the valid pixels.

    Args:
        pred (Tensor): Prediction of shape (B, C, H, W).
        target (Tensor): Target of the same shape.
        valid_mask (Tensor, optional): Pixels to count, shape (B, 1, H, W) (bool or 0/1).
            Defaults to None (all pixels).

    Returns:
        Tensor: The loss of every sample, shape (B,); 0 for a sample without valid pixels.
    """
    if pred.shape != target.shape:
        raise ValueError(f'MSE loss expects prediction and target of the same shape, got '
                         f'{tuple(pred.shape)} and {tuple(target.shape)}.')
    sq_err = (pred - target).pow(2)
    if valid_mask is None:
        return sq_err.flatten(1).mean(1)
    valid_mask = valid_mask.to(sq_err.dtype)
    num_valid = (valid_mask.flatten(1).sum(1) * pred.shape[1]).clamp_min(1)
    return (sq_err * valid_mask).flatten(1).sum(1) / num_valid


@MODELS.register_module()
class ReconstructionMSELoss(nn.Module):
    """Mean squared error between a reconstructed and a target image.

    Args:
        reduction (str): Reduction over the batch of per-sample losses: ``'none'``, ``'mean'``
            or ``'sum'``. Defaults to 'mean'.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss item. Defaults to 'loss_sr'.
    """

    def __init__(self,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_sr') -> None:
        super().__init__()
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}.")
        self.reduction = reduction
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                valid_mask: Optional[Tensor] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Compute the weighted loss.

        Args:
            pred (Tensor): Reconstructed image (B, C, H, W).
            target (Tensor): Target image (B, C, H, W).
            valid_mask (Tensor, optional): Valid pixels (B, 1, H, W). Defaults to None.
            reduction_override (str, optional): Overrides ``reduction``. Defaults to None.

        Returns:
            Tensor: The loss, a scalar or (B,) with reduction 'none'.
        """
        loss = masked_mse_loss(pred, target, valid_mask)
        return self.loss_weight * weight_reduce_loss(
            loss, reduction=reduction_override or self.reduction)

    @property
    def loss_name(self) -> str:
        """Name of the loss item."""
        return self._loss_name
