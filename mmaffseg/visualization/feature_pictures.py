# Copyright (c) mmaffseg contributors. All rights reserved.
"""Run an embedding model on image files and save the feature pictures (the logic of
``tools/visualize_features.py``).

The pictures follow Semantic Soft Segmentation (Aksoy, Oh, Paris, Pollefeys and Matusik, ACM
Transactions on Graphics (Proc. SIGGRAPH), 2018); see :mod:`mmaffseg.visualization.features`.
"""
import copy
import os
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
import torch
from torch import Tensor

from ..datasets.load_annotations import use_checked_loaders
from ..utils.image_io import read_image
from .features import visualize_embedding

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
#: Pipeline steps that read ground truth; dropped when embedding a bare image.
_GT_LOADERS = ('LoadAnnotations', 'LoadCheckedAnnotations', 'LoadInstanceMap')
_SUFFIX = '_features_'


def list_images(path: str) -> List[str]:
    """``path`` itself, or the images directly inside a folder (sorted, without our outputs)."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path} is neither an image file nor a folder')
    names = sorted(n for n in os.listdir(path)
                   if n.lower().endswith(IMAGE_EXTENSIONS) and _SUFFIX not in n)
    if not names:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {path}')
    return [osp.join(path, n) for n in names]


def embed_image(model: torch.nn.Module, img_path: str) -> Tensor:
    """Embedding (C, H, W) of one image file at its own size.

    Args:
        model (nn.Module): A ``FeatureEmbeddingSegmentor`` built by ``mmseg.apis.init_model``
            (its ``cfg.test_pipeline`` is used without the ground-truth loaders, the image
            read by ``LoadCheckedImageFromFile``: the picture's pixel grid).
        img_path (str): Image file.

    Returns:
        Tensor: The embedding, on the model's device.
    """
    from mmseg.apis import inference_model

    original = model.cfg.test_pipeline
    model.cfg.test_pipeline = use_checked_loaders(
        [copy.deepcopy(t) for t in original if t.get('type') not in _GT_LOADERS])
    try:
        sample = inference_model(model, img_path)
    finally:
        model.cfg.test_pipeline = original
    return sample.seg_logits.data


def save_feature_pictures(model: torch.nn.Module,
                          img_path: str,
                          out_dir: Optional[str] = None,
                          methods: Sequence[str] = ('pca', 'random'),
                          radius: int = 10,
                          eps: float = 0.01,
                          clamp: float = 5.0,
                          seed: int = 0) -> List[str]:
    """Write ``<stem>_features_<method>.png`` (the input's size) for one image.

    Args:
        model (nn.Module): Embedding model (see :func:`embed_image`).
        img_path (str): Image file.
        out_dir (str, optional): Output folder; defaults to the image's folder.
        methods (Sequence[str]): ``'pca'`` and/or ``'random'``. Defaults to both.
        radius (int): Guided-filter radius (0 disables the filter). Defaults to 10.
        eps (float): Guided-filter regulariser. Defaults to 0.01.
        clamp (float): Feature clamp. Defaults to 5.
        seed (int): Random-projection seed. Defaults to 0.

    Returns:
        list[str]: Paths written.
    """
    embedding = embed_image(model, img_path).float()
    rgb = read_image(img_path, channel_order='rgb')  # as the loaders read it
    image = torch.from_numpy(rgb).permute(2, 0, 1).to(embedding) / 255.0
    if image.shape[-2:] != embedding.shape[-2:]:
        raise RuntimeError(f'embedding {tuple(embedding.shape)} does not match image '
                           f'{tuple(image.shape)}; the model must predict at image size')
    out_dir = osp.dirname(osp.abspath(img_path)) if out_dir is None else out_dir
    os.makedirs(out_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(img_path))[0]
    written = []
    for method in methods:
        vis = visualize_embedding(embedding, image if radius > 0 else None, method, radius, eps,
                                  clamp, seed)
        pixels = (vis.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        path = osp.join(out_dir, f'{stem}{_SUFFIX}{method}.png')
        mmcv.imwrite(np.ascontiguousarray(pixels[..., ::-1]), path)  # cv2 writes BGR
        written.append(path)
    return written
