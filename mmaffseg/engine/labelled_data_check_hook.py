# Copyright (c) mmaffseg contributors. All rights reserved.
"""Stop before training on a dataset none of whose label maps labels a pixel.

A label map that holds only the ignore index trains nothing: the loss is 0, the accuracy
100 % and the mIoU nan, without a word. :class:`~mmaffseg.datasets.LoadCheckedAnnotations`
warns once per such file while loading; when every label map of a dataset is like that (labels
converted with the wrong ``label_map`` or ``reduce_zero_label``, an exporter that wrote only
255) this hook stops the run before the first iteration. It reads label maps in dataset order
until one labels a pixel: one file for a usable dataset. ``tools/train.py`` adds it to every
training run (``prepare_train_cfg``), ``tools/test.py`` to every test, unless the test only
writes predictions (every test evaluator has ``format_only=True``).
"""
from typing import Iterator, Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ..datasets.load_annotations import LoadCheckedAnnotations
from ..utils.config_errors import DataFileError


def _leaf_datasets(dataset) -> Iterator:
    """The datasets under mmengine's wrappers (concatenated, repeated, class-balanced)."""
    if hasattr(dataset, 'datasets'):
        for sub in dataset.datasets:
            yield from _leaf_datasets(sub)
    elif hasattr(dataset, 'dataset'):
        yield from _leaf_datasets(dataset.dataset)
    else:
        yield dataset


def _label_loader(dataset) -> Optional[LoadCheckedAnnotations]:
    transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms', None) or []
    return next((t for t in transforms if isinstance(t, LoadCheckedAnnotations)), None)


def check_labelled_pixels(dataset, where: str) -> None:
    """Raise a :class:`DataFileError` when every label map of ``dataset`` holds only the ignore
    index of its pipeline's :class:`LoadCheckedAnnotations` (datasets without that loader, or
    without label maps, are not checked).

    Args:
        dataset: The dataset (mmengine wrappers are looked through).
        where (str): The dataloader, for the message (e.g. ``'train_dataloader'``).
    """
    ignore_only, checked, first = 0, False, None
    for leaf in _leaf_datasets(dataset):
        loader = _label_loader(leaf)
        if loader is None or not hasattr(leaf, 'get_data_info'):
            continue
        for index in range(len(leaf)):
            info = leaf.get_data_info(index)
            if info.get('seg_map_path') is None:
                break  # a test set without label maps
            checked = True
            seg = loader.read_label_map(info)
            if not seg.size or (seg != loader.ignore_index).any():
                return
            ignore_only += 1
            first = first or (info['seg_map_path'], loader.ignore_index)
    if checked:
        effect = ('train on nothing (loss 0, mIoU nan)' if where.startswith('train') else
                  'evaluate nothing (mIoU nan)')
        raise DataFileError(
            f'every one of the {ignore_only} label maps of the {where} dataset '
            f'({type(dataset).__name__}) holds only the ignore index {first[1]} (e.g. '
            f'{first[0]}): it would {effect}. Check the label '
            'files and their conversion (Cityscapes: *_labelTrainIds.png; the dataset\'s '
            'label_map and reduce_zero_label)')


@HOOKS.register_module()
class LabelledDataCheckHook(Hook):
    """Run :func:`check_labelled_pixels` on the train and val datasets before training, and
    on the test dataset before testing."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        check_labelled_pixels(runner.train_dataloader.dataset, 'train_dataloader')
        if runner.val_loop is not None:
            check_labelled_pixels(runner.val_loop.dataloader.dataset, 'val_dataloader')

    def before_test(self, runner) -> None:
        """A test whose evaluators only write predictions (``format_only=True``, e.g. a
        Cityscapes test-server submission, whose test label maps are all ignore) reads no
        label and is not checked."""
        metrics = getattr(getattr(runner.test_loop, 'evaluator', None), 'metrics', None) or []
        if metrics and all(getattr(m, 'format_only', False) for m in metrics):
            return
        check_labelled_pixels(runner.test_loop.dataloader.dataset, 'test_dataloader')
