# Copyright (c) mmaffseg contributors. All rights reserved.
"""mmseg's ``SegLocalVisualizer`` that also paints mmaffseg's non-semantic predictions.

mmseg's visualizer draws only ``gt_sem_seg`` / ``pred_sem_seg`` (and depth maps); given a
sample with neither as prediction it has no picture and fails in OpenCV. mmaffseg's models also
predict

- instances (:class:`~mmaffseg.models.segmentors.InstanceEmbeddingSegmentor`, Fathi et al.
  2017): ``pred_instances`` (``masks``, ``labels`` indexing the sample's ``thing_class_ids``,
  ``scores``), painted one colour per instance with its class name and score;
- embeddings (:class:`~mmaffseg.models.segmentors.FeatureEmbeddingSegmentor`, Aksoy et al.
  2018): ``seg_logits`` without ``pred_sem_seg``, painted as the PCA picture of
  :func:`~mmaffseg.visualization.features.visualize_embedding`.

Label maps of any size are painted, a 1x1 one too (mmseg's ``_draw_sem_seg`` indexes a numpy
array with the map's torch tensor, which numpy reads as the integer 1 when it has one element);
everything else is drawn exactly as mmseg draws it, so the type can replace
``SegLocalVisualizer`` in any config (``visualizer = dict(type='AffSegLocalVisualizer', ...)``),
which makes ``SegVisualizationHook`` and ``tools/test.py --show-dir`` paint these models too.
"""
import colorsys
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.structures import InstanceData, PixelData
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from .features import visualize_embedding
from .mmseg_guards import unpaintable_prediction


def instance_colors(num: int) -> List[Tuple[int, int, int]]:
    """``num`` well-separated RGB colours (golden-ratio hue steps), the same for every call."""
    colors = []
    for i in range(num):
        r, g, b = colorsys.hsv_to_rgb((0.61803398875 * i) % 1.0, 0.75, 1.0)
        colors.append((int(r * 255), int(g * 255), int(b * 255)))
    return colors


def instance_caption(label: int, score: Optional[float], classes: Optional[Sequence[str]],
                     thing_class_ids: Optional[Sequence[int]]) -> str:
    """``'<class name> <score>'`` of one instance.

    Args:
        label (int): Instance label, an index into ``thing_class_ids`` when given, else into
            ``classes``.
        score (float, optional): Confidence; left out when ``None``.
        classes (Sequence[str], optional): Names of the dataset's semantic classes.
        thing_class_ids (Sequence[int], optional): Semantic class of each instance label.

    Returns:
        str: The caption; an unknown class is written ``class <label>``.
    """
    class_id = thing_class_ids[label] if thing_class_ids is not None else label
    if classes is not None and 0 <= class_id < len(classes):
        name = str(classes[class_id])
    else:
        name = f'class {class_id}'
    return name if score is None else f'{name} {score:.2f}'


@VISUALIZERS.register_module()
class AffSegLocalVisualizer(SegLocalVisualizer):
    """``SegLocalVisualizer`` that also paints instances and embeddings (module docstring).

    Takes ``SegLocalVisualizer``'s arguments (``name``, ``image``, ``vis_backends``,
    ``save_dir``, ``classes``, ``palette``, ``dataset_name``, ``alpha``).
    """

    def _draw_sem_seg(self,
                      image: np.ndarray,
                      sem_seg: PixelData,
                      classes: Optional[List],
                      palette: Optional[List],
                      with_labels: Optional[bool] = True) -> np.ndarray:
        """mmseg's painting of a label map, given the map as a numpy array.

        mmseg indexes the mask with ``sem_seg.data[0]``: a torch bool tensor of one element
        (a 1x1 map) is read by numpy as the index 1 (``IndexError``); a numpy map is a boolean
        mask at every size. Arguments and return as ``SegLocalVisualizer._draw_sem_seg``.
        """
        data = sem_seg.data
        if isinstance(data, torch.Tensor):
            sem_seg = PixelData(data=data.detach().cpu().numpy())
        return super()._draw_sem_seg(image, sem_seg, classes, palette, with_labels)

    def draw_instances(self, image: np.ndarray, instances: InstanceData,
                       thing_class_ids: Optional[Sequence[int]] = None,
                       with_labels: bool = True) -> np.ndarray:
        """Paint instance masks on an image, each with its class name and score.

        Args:
            image (np.ndarray): RGB image (H, W, 3), uint8.
            instances (InstanceData): ``masks`` (n, H, W) bool; optional ``labels`` (n,) and
                ``scores`` (n,). Painted lowest score first, so the best mask is on top.
            thing_class_ids (Sequence[int], optional): Semantic class of each label (classes
                are named from ``dataset_meta['classes']``).
            with_labels (bool): Write the captions. Defaults to True.

        Returns:
            np.ndarray: The painted RGB image.
        """
        masks = instances.masks
        masks = (masks.cpu().numpy() if isinstance(masks, torch.Tensor) else
                 np.asarray(masks)).astype(bool)
        if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
            raise ValueError(f'instance masks {masks.shape} do not match the image '
                             f'{image.shape[:2]}: pass the image the prediction was made on')
        num = masks.shape[0]
        labels = instances.get('labels', None)
        scores = instances.get('scores', None)
        order = (np.argsort(scores.cpu().numpy(), kind='stable') if scores is not None else
                 np.arange(num))
        colors = instance_colors(num)
        painted = image.copy()
        for i in order:
            painted[masks[i]] = (painted[masks[i]] * (1 - self.alpha) +
                                 np.array(colors[i]) * self.alpha).astype(np.uint8)
        self.set_image(painted)
        if with_labels and labels is not None and num:
            classes = self.dataset_meta.get('classes') if self.dataset_meta else None
            texts, positions, text_colors = [], [], []
            for i in order:
                if not masks[i].any():
                    continue
                score = None if scores is None else float(scores[i])
                texts.append(instance_caption(int(labels[i]), score, classes, thing_class_ids))
                positions.append(self._get_center_loc(masks[i].astype(np.uint8)))
                text_colors.append(colors[i])
            if texts:
                font_size = max(6, min(image.shape[:2]) // 25)
                self.draw_texts(texts, np.stack(positions), colors='white',
                                font_sizes=font_size,
                                bboxes=[dict(facecolor=tuple(c / 255 for c in color),
                                             alpha=0.8, pad=0.7, edgecolor='none')
                                        for color in text_colors])
        return self.get_image()

    def draw_embedding(self, image: np.ndarray, embedding: torch.Tensor) -> np.ndarray:
        """The PCA picture of an embedding (C, H, W) of the image (its RGB guides the filter).

        Args:
            image (np.ndarray): RGB image (H, W, 3), uint8.
            embedding (Tensor): Features (C, H, W) at the image's size.

        Returns:
            np.ndarray: RGB picture (H, W, 3), uint8.
        """
        embedding = torch.as_tensor(embedding).float().cpu()
        if embedding.shape[-2:] != image.shape[:2]:
            raise ValueError(f'embedding {tuple(embedding.shape)} does not match the image '
                             f'{image.shape[:2]}: pass the image the prediction was made on')
        guide = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255
        picture = visualize_embedding(embedding, guide)
        picture = (picture.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        self.set_image(picture)
        return picture

    def _draw_prediction(self, image: np.ndarray, data_sample: SegDataSample,
                         with_labels: bool) -> np.ndarray:
        """Picture of the sample's instances, else of its embedding (``seg_logits``)."""
        if 'pred_instances' in data_sample:
            return self.draw_instances(image, data_sample.pred_instances,
                                       data_sample.metainfo.get('thing_class_ids'),
                                       with_labels)
        return self.draw_embedding(image, data_sample.seg_logits.data)

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """Draw a sample (ground truth left, prediction right) and save it to the backends.

        Arguments as ``SegLocalVisualizer.add_datasample``. Samples whose prediction mmseg
        paints (``pred_sem_seg``, depth), or without a sample, are drawn by mmseg's code.
        The image may be any numpy view: mmseg's ``tools/misc/browse_dataset.py`` passes a
        channel-last view of the loader's tensor, and mmseg's code draws on a
        ``np.zeros_like`` copy of it, which OpenCV (every build for numpy 2, 4.10 on) refuses
        unless it is C-contiguous (``cv2.rectangle``: "Layout of the output array img is
        incompatible with cv::Mat").
        """
        image = np.ascontiguousarray(image)
        ours = data_sample is not None and draw_pred and bool(
            unpaintable_prediction(data_sample))
        if not ours:
            return super().add_datasample(name, image, data_sample, draw_gt, draw_pred, show,
                                          wait_time, out_file, step, with_labels)
        panels = []
        if draw_gt and 'gt_sem_seg' in data_sample:
            panels.append(self._draw_sem_seg(image, data_sample.gt_sem_seg,
                                             self.dataset_meta['classes'],
                                             self.dataset_meta['palette'], with_labels))
        panels.append(self._draw_prediction(image, data_sample, with_labels))
        drawn = np.concatenate(panels, axis=1)
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)
