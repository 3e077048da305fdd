# Copyright (c) mmaffseg contributors. All rights reserved.
"""Class activation maps (CAMs) for weakly supervised segmentation, PSA style.

Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016 (CAM);
Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018 (the inference recipe used here).

Conventions shared by the whole ``mmaffseg.wsss`` pipeline:

* CAM class ``k`` (0-based, the order of the classifier's outputs and of ``gt_class_labels``)
  is segmentation label ``k + 1``; label 0 is background.
* A *score stack* is ``(K + 1, H, W)``: channel 0 the background score
  ``(1 - max_k CAM_k) ** alpha``, channel ``i >= 1`` the CAM of class ``class_ids[i - 1]``.
  :func:`stack_to_label` turns an argmax over such a stack into labels.
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmaffseg.ops.psa_defaults import PSA_DEFAULTS


def add_background(cams: Tensor, alpha: float) -> Tensor:
    """Prepend the background score ``(1 - max_k cam_k) ** alpha`` to a CAM stack.

    Args:
        cams (Tensor): ``(..., K, H, W)`` CAMs normalised to [0, 1]; K may be 0.
        alpha (float): Background power: 4 ("low", background amplified), 32 ("high"),
            16 for the random walk in PSA.

    Returns:
        Tensor: ``(..., K + 1, H, W)``, background first.
    """
    if cams.shape[-3] == 0:
        return torch.ones_like(cams.sum(-3, keepdim=True))
    bg = (1 - cams.amax(dim=-3, keepdim=True)).pow(alpha)
    return torch.cat([bg, cams], dim=-3)


def stack_to_label(index: Tensor, class_ids: Tensor) -> Tensor:
    """Map argmax indices over a score stack to labels (0 background, ``k + 1`` class k).

    Args:
        index (Tensor): Integer map of stack indices (0 = background, i = ``class_ids[i-1]``).
        class_ids (Tensor): ``(K,)`` 0-based CAM classes of the stack channels 1..K.

    Returns:
        Tensor: int64 labels, shaped like ``index``.
    """
    lut = torch.cat([class_ids.new_zeros(1), class_ids + 1]).long().to(index.device)
    return lut[index.long()]


@torch.no_grad()
def multi_scale_cam(cam_fn: Callable[[Tensor], Tensor],
                    img: Tensor,
                    class_labels: Tensor,
                    scales: Sequence[float] = PSA_DEFAULTS.cam_scales,
                    flip: bool = PSA_DEFAULTS.cam_flip,
                    scaled_input: Optional[Callable[[Tuple[int, int]], Tensor]] = None
                    ) -> Tuple[Tensor, Tensor]:
    """Multi-scale, flipped CAMs of the classes present in one image.

    For every scale the image is resized to ``(round(H * s), round(W * s))``, run with its
    horizontal flip, and the CAMs are upsampled bilinearly (``align_corners=False``) to the
    image size, un-flipped and summed. Each present class is then divided by its maximum
    (+1e-5). The reference resizes the uint8 image with PIL's bicubic filter and normalises
    after; ``scaled_input`` does that when given (e.g.
    :func:`~mmaffseg.wsss.pseudo_label_stages.pil_scaled_inputs`), otherwise the normalised
    image is resized with torch's bicubic interpolation (antialiased when shrinking).

    Args:
        cam_fn (Callable): Batch of normalised images ``(N, 3, h, w)`` -> CAMs ``(N, C, h', w')``,
            e.g. :meth:`mmaffseg.models.segmentors.CAMClassifier.forward_cam`.
        img (Tensor): One normalised image, ``(3, H, W)`` or ``(1, 3, H, W)``.
        class_labels (Tensor): ``(C,)`` multi-hot image-level labels.
        scales (Sequence[float]): Image scales. Default: PSA's ``cam_scales``.
        flip (bool): Add horizontally flipped copies. Default: PSA's ``cam_flip``.
        scaled_input (Callable, optional): ``(h, w) -> (1, 3, h, w)`` normalised image at that
            size. Defaults to torch's bicubic resize of ``img``.

    Returns:
        tuple[Tensor, Tensor]: ``cams`` ``(K, H, W)`` in [0, 1] for the K present classes and
        their 0-based ``class_ids`` ``(K,)`` (ascending).
    """
    img = img.unsqueeze(0) if img.dim() == 3 else img
    if img.dim() != 4 or img.shape[0] != 1:
        raise ValueError(f'multi_scale_cam takes one image (3, H, W) or (1, 3, H, W), got '
                         f'shape {tuple(img.shape)}; loop over a batch')
    height, width = img.shape[-2:]
    total = 0
    for scale in scales:
        size = (round(height * scale), round(width * scale))
        if size == (height, width):
            x = img
        elif scaled_input is not None:
            x = scaled_input(size).to(img)
        else:
            x = F.interpolate(img, size, mode='bicubic', align_corners=False,
                              antialias=scale < 1)
        x = torch.cat([x, x.flip(-1)]) if flip else x
        cam = F.interpolate(cam_fn(x), (height, width), mode='bilinear', align_corners=False)
        total = total + cam[0] + (cam[1].flip(-1) if flip else 0)
    if total.shape[0] != class_labels.numel():
        raise ValueError(f'cam_fn gives {total.shape[0]} classes but class_labels has '
                         f'{class_labels.numel()} entries; they must match')
    class_ids = torch.nonzero(class_labels.flatten() > 0)[:, 0].to(total.device)
    cams = total[class_ids]
    return cams / (cams.amax(dim=(-2, -1), keepdim=True) + 1e-5), class_ids
