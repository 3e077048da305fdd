# Copyright (c) mmaffseg contributors. All rights reserved.
"""Clear errors where mmseg's own visualiser and inferencer meet predictions they cannot handle.

Two model families predict something other than a label map: instance embedding
(``pred_instances``) and semantic features (the embedding as ``seg_logits``, no
``pred_sem_seg``). mmseg's code fails on them without saying why:

- ``SegLocalVisualizer.add_datasample`` (``SegVisualizationHook``, ``tools/test.py
  --show-dir``, ``MMSegInferencer`` with ``out_dir`` or ``show``) draws no prediction panel and
  then writes an empty picture: ``cv2.error ... !_src.empty() in function 'cvtColor'``;
- ``MMSegInferencer.__call__`` (without ``return_datasamples=True``) turns each prediction into
  an array by taking the first of its label / depth maps: a bare ``StopIteration``.

:func:`install_mmseg_guards` (run on ``import mmaffseg``) wraps both methods so that, for such
a sample only, they raise a ``ValueError`` naming the documented alternative
(``AffSegLocalVisualizer``; ``return_datasamples=True``, docs/inference.md). Every other sample
goes to mmseg's code unchanged.
"""
import functools
from typing import Optional

from mmseg.structures import SegDataSample

_GUARDED = '_mmaffseg_guard'


def unpaintable_prediction(data_sample: SegDataSample) -> Optional[str]:
    """What in ``data_sample``'s prediction mmseg's own code cannot draw or return as an array.

    Args:
        data_sample (SegDataSample): A model's prediction.

    Returns:
        str | None: ``'instances (pred_instances)'``, ``'an embedding (seg_logits without
        pred_sem_seg)'``, or None for a label map / depth map / no prediction.
    """
    if 'pred_instances' in data_sample:
        return 'instances (pred_instances)'
    if ('seg_logits' in data_sample and 'pred_sem_seg' not in data_sample
            and 'pred_depth_map' not in data_sample):
        return 'an embedding (seg_logits without pred_sem_seg)'
    return None


def _guard_visualizer(visualizer_cls: type, painter_cls: type) -> None:
    """Wrap ``visualizer_cls.add_datasample`` (mmseg's ``SegLocalVisualizer``)."""
    original = visualizer_cls.add_datasample
    if getattr(original, _GUARDED, False):
        return

    @functools.wraps(original)
    def add_datasample(self, name, image, data_sample=None, draw_gt=True, draw_pred=True,
                       *args, **kwargs):
        what = (unpaintable_prediction(data_sample)
                if data_sample is not None and draw_pred else None)
        if what and not isinstance(self, painter_cls):
            raise ValueError(
                f"mmseg's {type(self).__name__} cannot paint {what}, which this model "
                f"predicts: set visualizer = dict(type='{painter_cls.__name__}') in the config "
                f'(or --cfg-options visualizer.type={painter_cls.__name__}; it paints '
                'instances and embeddings, docs/inference.md)')
        return original(self, name, image, data_sample, draw_gt, draw_pred, *args, **kwargs)

    setattr(add_datasample, _GUARDED, True)
    visualizer_cls.add_datasample = add_datasample


def _guard_inferencer(inferencer_cls: type) -> None:
    """Wrap ``inferencer_cls.postprocess`` (mmseg's ``MMSegInferencer``)."""
    original = inferencer_cls.postprocess
    if getattr(original, _GUARDED, False):
        return

    @functools.wraps(original)
    def postprocess(self, preds, visualization=None, return_datasample=False, *args, **kwargs):
        if not return_datasample:
            for pred in preds:
                what = unpaintable_prediction(pred)
                if what:
                    raise ValueError(
                        f'MMSegInferencer returns only label and depth maps as arrays; this '
                        f'model predicts {what}: call the inferencer with '
                        'return_datasamples=True to get the SegDataSample (docs/inference.md)')
        return original(self, preds, visualization, return_datasample, *args, **kwargs)

    setattr(postprocess, _GUARDED, True)
    inferencer_cls.postprocess = postprocess


def install_mmseg_guards() -> None:
    """Make mmseg's ``SegLocalVisualizer`` and ``MMSegInferencer`` stop with a clear error on
    instance and embedding predictions (module docstring). Idempotent."""
    from mmseg.apis import MMSegInferencer
    from mmseg.visualization import SegLocalVisualizer

    from .local_visualizer import AffSegLocalVisualizer
    _guard_visualizer(SegLocalVisualizer, AffSegLocalVisualizer)
    _guard_inferencer(MMSegInferencer)
