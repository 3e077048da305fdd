# Copyright (c) mmaffseg contributors. All rights reserved.
"""Load a model for inference and paint its results, as mmseg's ``init_model`` and
``show_result_pyplot`` with mmseg's arguments.

mmseg's ``init_model`` / ``inference_model`` / ``MMSegInferencer`` run every mmaffseg model
unchanged. :func:`init_model` here loads the checkpoint strictly (mmseg's loads a checkpoint of
another model with warnings) and takes the class names from the config when the checkpoint has
none (mmseg's fails on a checkpoint without ``meta`` and otherwise guesses a dataset by class
count). mmseg's ``show_result_pyplot`` always uses ``SegLocalVisualizer``, which paints only
semantic label maps; :func:`show_result_pyplot` here takes the same arguments and uses
:class:`~mmaffseg.visualization.AffSegLocalVisualizer`, which also paints instances (instance
embedding) and embeddings (semantic features).
"""
from pathlib import Path
from typing import Optional, Union

import mmcv
import numpy as np
import torch.nn as nn
from mmengine.config import Config
from mmseg.registry import DATASETS
from mmseg.structures import SegDataSample

from ..utils import load_model_weights
from ..utils.image_io import read_image
from ..visualization import AffSegLocalVisualizer


def config_dataset_meta(cfg: Config) -> Optional[dict]:
    """Class names and palette of the config's test (else validation, else training) dataset.

    The dataset's ``metainfo`` setting wins over its class's ``METAINFO``, as in the dataset.
    Returns None when the config names no dataset with both.
    """
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(key) or {}).get('dataset')
        if not dataset or 'type' not in dataset:
            continue
        cls = DATASETS.get(dataset['type'])
        meta = dict(getattr(cls, 'METAINFO', {}) or {}, **(dataset.get('metainfo') or {}))
        if 'classes' in meta and 'palette' in meta:
            return dict(classes=list(meta['classes']), palette=[list(c) for c in meta['palette']])
    return None


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cuda:0',
               cfg_options: Optional[dict] = None,
               strict: bool = True,
               opt_out: str = 'strict=False',
               allow_nonfinite: bool = False,
               nonfinite_opt_out: str = 'allow_nonfinite=True') -> nn.Module:
    """Build a segmentor from a config and load a checkpoint, as mmseg's ``init_model``.

    The checkpoint is loaded safely (weights-only, docs/checkpoints.md) and, by default,
    strictly. ``model.dataset_meta`` comes from the checkpoint's ``meta`` (what training
    saves), else from the config's dataset (:func:`config_dataset_meta`); on CPU, SyncBN
    layers are turned into BN, as mmseg's demos do.

    Args:
        config (str | Path | Config): Config file or loaded config.
        checkpoint (str, optional): Checkpoint file or URL. Defaults to None (initial weights).
        device (str): Device of the model, e.g. ``'cpu'``. Defaults to ``'cuda:0'``.
        cfg_options (dict, optional): Overrides merged into the config. Defaults to None.
        strict (bool): Refuse a checkpoint whose weights do not fit the model exactly.
            Defaults to True.
        opt_out (str): How the user turns strictness off, for the error message.
            Defaults to ``'strict=False'``.
        allow_nonfinite (bool): Load NaN/inf weights too (a diverged training). Defaults to
            False: such a checkpoint raises :class:`CheckpointError` naming the first tensor.
        nonfinite_opt_out (str): How the user allows them, for the error message.

    Returns:
        nn.Module: The segmentor in eval mode, with ``cfg`` and ``dataset_meta`` set.

    Raises:
        CheckpointError: The checkpoint is missing, unreadable, refused or does not fit.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmseg.apis import init_model as mmseg_init_model

    model = mmseg_init_model(config, None, device='cpu', cfg_options=cfg_options)
    meta = None
    if checkpoint is not None:
        loaded = load_model_weights(model, checkpoint, strict=strict, opt_out=opt_out,
                                    allow_nonfinite=allow_nonfinite,
                                    nonfinite_opt_out=nonfinite_opt_out)
        meta = (loaded.get('meta') or {}).get('dataset_meta') if isinstance(loaded,
                                                                            dict) else None
    model.dataset_meta = meta or config_dataset_meta(model.cfg)
    if str(device) == 'cpu':
        model = revert_sync_batchnorm(model)
    return model.to(device).eval()


def show_result_pyplot(model: nn.Module,
                       img: Union[str, np.ndarray],
                       result: SegDataSample,
                       opacity: float = 0.5,
                       title: str = '',
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       wait_time: float = 0,
                       show: bool = True,
                       withLabels: Optional[bool] = True,  # noqa: N803 (mmseg's name)
                       save_dir: Optional[str] = None,
                       out_file: Optional[str] = None) -> np.ndarray:
    """Paint a result of ``mmseg.apis.inference_model`` on its image.

    Args:
        model (nn.Module): The model from ``mmseg.apis.init_model``; its ``dataset_meta``
            names the classes.
        img (str | np.ndarray): The image file, or the image (BGR, as mmseg reads it).
        result (SegDataSample): The prediction (semantic map, instances or embedding).
        opacity (float): Opacity of the painted masks, in (0, 1]. Defaults to 0.5.
        title (str): Window title / image name. Defaults to ''.
        draw_gt (bool): Paint the ground truth if the sample has one. Defaults to True.
        draw_pred (bool): Paint the prediction. Defaults to True.
        wait_time (float): Seconds to show the window. Defaults to 0.
        show (bool): Show the picture in a window. Defaults to True.
        withLabels (bool): Write class names (and instance scores). Defaults to True.
        save_dir (str, optional): Folder of the visualiser's backends. Defaults to None.
        out_file (str, optional): Write the picture to this file. Defaults to None.

    Returns:
        np.ndarray: The painted RGB picture.
    """
    if hasattr(model, 'module'):
        model = model.module
    image = (read_image(img, channel_order='rgb') if isinstance(img, str) else
             mmcv.bgr2rgb(img))
    visualizer = AffSegLocalVisualizer(
        vis_backends=[dict(type='LocalVisBackend')], save_dir=save_dir, alpha=opacity)
    visualizer.dataset_meta = dict(
        classes=model.dataset_meta['classes'], palette=model.dataset_meta['palette'])
    visualizer.add_datasample(
        name=title,
        image=image,
        data_sample=result,
        draw_gt=draw_gt,
        draw_pred=draw_pred,
        wait_time=wait_time,
        out_file=out_file,
        show=show,
        with_labels=withLabels)
    return visualizer.get_image()
