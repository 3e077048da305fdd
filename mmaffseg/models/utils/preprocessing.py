# Copyright (c) mmaffseg contributors. All rights reserved.
"""Undo mmseg's data preprocessing: the image behind a model input, for code that needs pixels.

mmseg's ``SegDataPreProcessor`` turns the loader's image into the model input in three steps:
it swaps BGR <-> RGB when ``bgr_to_rgb`` / ``rgb_to_bgr`` is set (its ``channel_conversion``
attribute), normalises ``(img - mean) / std`` when ``mean`` / ``std`` are set (its ``mean`` and
``std`` buffers exist only then), and pads the batch (``padding_size`` at training,
``img_padding_size`` at test, as ``(left, right, top, bottom)``). The dense CRF of
:class:`~mmaffseg.models.segmentors.CRFRefineSegmentor` and of the PSA pseudo-label loop, DSRL's
super-resolution target and instance embedding's mask resizing each need one of these undone;
they all use these functions.

Colour order: mmcv's ``LoadImageFromFile`` loads BGR. A preprocessor without a
``channel_conversion`` attribute (mmengine's ``BaseDataPreprocessor``) does not convert.
"""
from typing import Tuple

from torch import Tensor


def converts_channels(data_preprocessor) -> bool:
    """Whether the preprocessor swaps the channel order (False when it has no such setting)."""
    return bool(getattr(data_preprocessor, 'channel_conversion', False))


def unnormalize(inputs: Tensor, data_preprocessor) -> Tensor:
    """``inputs * std + mean`` with the preprocessor's buffers (unchanged if it does not normalise).

    Args:
        inputs (Tensor): Model input ``(B, C, H, W)`` or ``(C, H, W)``.
        data_preprocessor: The model's data preprocessor.

    Returns:
        Tensor: The image in the loader's value range (dtype promoted as ``inputs * std``).
    """
    mean = getattr(data_preprocessor, 'mean', None)
    std = getattr(data_preprocessor, 'std', None)
    if mean is None or std is None:
        return inputs
    return inputs * std.to(inputs.device) + mean.to(inputs.device)


def sample_padding(metainfo: dict) -> Tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` padding the preprocessor added to one sample.

    Test-time padding is recorded as ``img_padding_size``, training-time as ``padding_size``;
    no record means no padding.
    """
    padding = metainfo.get('img_padding_size', metainfo.get('padding_size', None))
    left, right, top, bottom = padding or (0, 0, 0, 0)
    return left, right, top, bottom


def unpad(img: Tensor, metainfo: dict) -> Tensor:
    """Crop the preprocessor's padding (:func:`sample_padding`) off a ``(..., H, W)`` sample."""
    left, right, top, bottom = sample_padding(metainfo)
    return img[..., top:img.shape[-2] - bottom, left:img.shape[-1] - right]


def to_rgb(img: Tensor, data_preprocessor, preprocessed: bool = True) -> Tensor:
    """A ``(3, H, W)`` image in RGB order.

    Args:
        img (Tensor): The image, channels first.
        data_preprocessor: The model's data preprocessor.
        preprocessed (bool): True (the default) when ``img`` is the preprocessor's output: it is
            RGB when the preprocessor converted the loader's BGR, BGR otherwise. False when
            ``img`` is the packed loader image (``data['inputs']``, before the preprocessor):
            it is flipped unless the preprocessor exists with its conversion explicitly off
            (``bgr_to_rgb=False``), in which case the pipeline is taken to load the model's own
            (RGB) order; this keeps the PSA pseudo-label loop's behaviour.

    Returns:
        Tensor: ``img`` or ``img`` with its channels reversed.
    """
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f'to_rgb expects a (3, H, W) image, got {tuple(img.shape)}')
    if preprocessed:
        flip = not converts_channels(data_preprocessor)
    else:
        flip = bool(getattr(data_preprocessor, 'channel_conversion', True))
    return img.flip(dims=(0, )) if flip else img
