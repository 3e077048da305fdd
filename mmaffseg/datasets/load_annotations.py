# Copyright (c) mmaffseg contributors. All rights reserved.
"""Label-map loading that names the offending file when a label PNG is unusable."""
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadCheckedAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` plus checks on the decoded label map.

    mmseg's loader fails deep inside numpy on a corrupt PNG and silently misaligns a label map
    whose size differs from its image. This one raises a ``ValueError`` naming the file, what
    was expected and what was found. Use it in place of ``LoadAnnotations`` (same arguments),
    after ``LoadImageFromFile``.

    A sample without ``seg_map_path`` (an image given to mmseg's ``inference_model`` or
    ``MMSegInferencer``, which remove only transforms named ``LoadAnnotations`` from the test
    pipeline, or a test set without label maps) passes through unchanged, so the same test
    pipeline serves evaluation and inference. A ``seg_map_path`` of ``None`` is an error.
    """

    def transform(self, results: dict) -> dict:
        """Load the label map, or pass a sample without ``seg_map_path`` through unchanged."""
        if 'seg_map_path' not in results:
            return results
        if results['seg_map_path'] is None:
            raise ValueError(f'the sample of {results.get("img_path")} has seg_map_path=None: '
                             'give its label map, or leave the key out for inference')
        return super().transform(results)

    def _load_seg_map(self, results: dict) -> None:
        path = results.get('seg_map_path')
        try:
            super()._load_seg_map(results)
        except Exception as e:  # noqa: BLE001 - re-raised with the file name
            raise ValueError(f'could not decode the label map {path}: the file is corrupt, '
                             f'empty or not an image ({type(e).__name__}: {e})') from e
        seg = results['gt_seg_map']
        if seg.ndim != 2:
            raise ValueError(f'label map {path} must be single-channel, decoded shape '
                             f'{seg.shape}')
        img_shape = results.get('ori_shape', results.get('img_shape'))
        if img_shape is not None and tuple(seg.shape) != tuple(img_shape[:2]):
            raise ValueError(
                f'label map {path} is {seg.shape[0]}x{seg.shape[1]} but its image '
                f'{results.get("img_path")} is {img_shape[0]}x{img_shape[1]}; a label map must '
                'have its image\'s size (regenerate or fix the annotation)')
