# Copyright (c) mmaffseg contributors. All rights reserved.
"""Paint an inference result of any mmaffseg model, as mmseg's ``show_result_pyplot``.

mmseg's ``init_model`` / ``inference_model`` / ``MMSegInferencer`` run every mmaffseg model
unchanged. mmseg's ``show_result_pyplot`` always uses ``SegLocalVisualizer``, which paints only
semantic label maps; :func:`show_result_pyplot` here takes the same arguments and uses
:class:`~mmaffseg.visualization.AffSegLocalVisualizer`, which also paints instances (instance
embedding) and embeddings (semantic features).
"""
from typing import Optional, Union

import mmcv
import numpy as np
import torch.nn as nn
from mmseg.structures import SegDataSample

from ..utils.image_io import read_image
from ..visualization import AffSegLocalVisualizer


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
