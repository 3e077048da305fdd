# Copyright (c) mmaffseg contributors. All rights reserved.
"""Config preparation and runner construction for mmaffseg's tools, following mmseg 1.x."""
import errno
import os
import os.path as osp
import stat
from typing import Callable, Optional, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..datasets.load_annotations import use_checked_loaders
from ..utils import CheckpointError, load_checkpoint_file, resolve_resume_checkpoint
from ..utils.checkpoint import is_readable_checkpoint
from ..utils.compat import scoped_config_path
from ..utils.config_errors import (
    ConfigFileError,
    DataFileError,
    DataRootError,
)
from .cfg_options import check_cfg_options, normalize_cfg_options
from .config_checks import check_train_settings, check_untyped_settings, read_config_file
from .config_checks import dataset_configs as _datasets
from .cpu_distributed import check_no_sync_bn, setup_cpu_distributed
from .errors import registry_error_hints
from .evaluator_outputs import set_test_output_dir
from .training_precision import AMP_WRAPPER, use_amp, use_channels_last

_AUTO_GENERATED_DATASETS = ('SyntheticCityscapesDataset', 'SyntheticCityscapesWSSSDataset')




def load_config(path: str, cfg_options: Optional[dict] = None,
                before_options: Optional[Callable[[Config], None]] = None) -> Config:
    """Read a config and merge CLI overrides.

    ``path`` is a file, or a package-scoped config such as
    ``mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py`` (resolved in the installed
    package, as ``_base_`` entries are). ``before_options`` edits the config in place before
    the overrides are checked against it (e.g. a tool that names another loop type).
    """
    if '::' in path and not osp.isfile(path):
        # the same resolution as mmengine's for ``_base_`` (mmaffseg's scope is registered
        # by ``import mmaffseg``)
        path = scoped_config_path(path)
    if not osp.isfile(path):
        raise ConfigFileError(f'config file {path} does not exist')
    cfg = read_config_file(path)  # a missing _base_, a syntax error: naming the file
    if before_options is not None:
        before_options(cfg)
    if cfg_options:
        check_cfg_options(cfg, cfg_options)  # a misspelt key: ConfigCheckError naming it
        cfg.merge_from_dict(normalize_cfg_options(cfg, cfg_options))
    check_untyped_settings(cfg)  # e.g. train_dataloader.batchsize
    cfg.setdefault('default_scope', 'mmseg')
    return cfg


def default_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> str:
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir') is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def prepare_train_cfg(cfg: Config,
                      config_path: str,
                      work_dir: Optional[str] = None,
                      resume: Optional[str] = None,
                      amp: Union[bool, str, None] = False,
                      launcher: str = 'none',
                      channels_last: bool = False) -> Config:
    """Apply tools/train.py's options to ``cfg`` in place and return it.

    Args:
        cfg (Config): The loaded config.
        config_path (str): Path of the config (names the default work dir).
        work_dir (str, optional): Overrides ``cfg.work_dir``.
        resume (str, optional): ``'auto'`` resumes from the latest checkpoint in the work dir
            (``last_checkpoint``, or the newest readable ``iter_N.pth``/``epoch_N.pth`` when
            that is empty or stale; afresh when there is none), a path resumes from that
            checkpoint, ``None`` starts afresh.
        amp (bool | str, optional): Train with automatic mixed precision: True or ``'auto'``
            (bfloat16 where the device supports it, else float16), ``'bfloat16'`` or
            ``'float16'`` (:func:`~mmaffseg.cli.training_precision.use_amp`); False or None:
            as the config says.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
        channels_last (bool): Run the model and batches in the channels-last memory format
            (:func:`~mmaffseg.cli.training_precision.use_channels_last`).
    """
    cfg.launcher = launcher
    cfg.work_dir = default_work_dir(cfg, config_path, work_dir)
    if launcher != 'none' and not torch.cuda.is_available():
        check_no_sync_bn(cfg)
    check_train_settings(cfg)  # learning rate, crop size vs data_preprocessor.size
    _add_custom_hooks(cfg, 'NumClassesCheckHook', 'LabelledDataCheckHook')
    if amp:
        dtype = use_amp(cfg, 'auto' if amp is True else amp)
        print_log(f'--amp: {AMP_WRAPPER}, {dtype} autocast', logger='current')
    if channels_last:
        use_channels_last(cfg)
    if resume is None and cfg.get('resume') and not cfg.get('load_from'):
        resume = 'auto'  # resume=True in the config: mmengine's auto-resume
    if resume == 'auto':
        found = resolve_resume_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
        cfg.resume = found is not None
        cfg.load_from = found
    elif resume is not None:
        check_checkpoint_file(resume)
        cfg.resume = True
        cfg.load_from = resume
    elif cfg.get('load_from'):
        check_checkpoint_file(cfg.load_from)
    _use_safe_checkpoint_hooks(cfg)
    return cfg


def _add_custom_hooks(cfg: Config, *types: str) -> None:
    """Append ``dict(type=T)`` to ``cfg.custom_hooks`` for each type it does not list."""
    hooks = list(cfg.get('custom_hooks') or [])
    hooks += [dict(type=t) for t in types if not any(h.get('type') == t for h in hooks)]
    cfg.custom_hooks = hooks


def check_checkpoint_file(path: str) -> None:
    """Fail early, before anything is built, on a missing or unreadable local checkpoint.

    Raises:
        CheckpointError: Saying what is wrong with the file.
    """
    if '://' in path:
        return
    if not osp.isfile(path):
        raise CheckpointError(path, 'does not exist')
    if not is_readable_checkpoint(path):
        load_checkpoint_file(path, map_location='cpu')  # raises, unless a pre-zip checkpoint


def _use_safe_checkpoint_hooks(cfg: Config) -> None:
    """Write checkpoints atomically, keep the RNG states in them and never save (or train on)
    non-finite weights (see mmaffseg.engine)."""
    hooks = cfg.setdefault('default_hooks', ConfigDict())
    checkpoint = hooks.get('checkpoint')
    if checkpoint is not None and checkpoint.get('type') in ('CheckpointHook',
                                                             'mmengine.CheckpointHook'):
        checkpoint['type'] = 'AtomicCheckpointHook'
    _add_default_hook(hooks, 'rng_state', 'RNGStateHook')
    if not any(h.get('type') == 'FiniteCheckHook' for h in cfg.get('custom_hooks') or []):
        _add_default_hook(hooks, 'finite_check', 'FiniteCheckHook')


def _add_default_hook(hooks: ConfigDict, name: str, hook_type: str) -> None:
    """Add ``default_hooks.<name>`` of ``hook_type``; the config's settings of it are kept
    (``--cfg-options default_hooks.<name>.<arg>=...``), ``None`` switches it off."""
    if name in hooks and hooks[name] is None:
        del hooks[name]  # mmengine accepts None only for its own default hooks
        return
    hooks.setdefault(name, ConfigDict())
    hooks[name].setdefault('type', hook_type)


def prepare_test_cfg(cfg: Config,
                     config_path: str,
                     checkpoint: str,
                     work_dir: Optional[str] = None,
                     out: Optional[str] = None,
                     show: bool = False,
                     show_dir: Optional[str] = None,
                     wait_time: float = 2,
                     tta: bool = False,
                     launcher: str = 'none') -> Config:
    """Apply tools/test.py's options to ``cfg`` in place and return it (see that tool)."""
    check_checkpoint_file(checkpoint)
    cfg.launcher = launcher
    cfg.work_dir = default_work_dir(cfg, config_path, work_dir)
    cfg.load_from = checkpoint
    _add_custom_hooks(cfg, 'LabelledDataCheckHook')
    if show or show_dir:
        hooks = cfg.get('default_hooks', {})
        if 'visualization' not in hooks:
            raise RuntimeError('--show/--show-dir need a visualization hook in default_hooks, '
                               "e.g. visualization=dict(type='SegVisualizationHook')")
        hooks.visualization.draw = True
        hooks.visualization.interval = 1  # every image (training configs paint every n-th)
        if show:
            hooks.visualization.show = True
            hooks.visualization.wait_time = wait_time
        if show_dir:
            cfg.visualizer.save_dir = show_dir
    if tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta needs `tta_model` and `tta_pipeline` in the config (mmseg '
                             'dataset bases define them)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if out is not None:
        # a list of evaluators too: those that can write get the folder (test_outputs.py)
        routed = set_test_output_dir(cfg, out)
        if len(routed) > 1:
            print_log('--out: ' + '; '.join(f'{name} writes to {folder}'
                                            for name, folder in routed), logger='current')
    return cfg


#: Image file name endings whose dangling symbolic links :func:`check_data_roots` reports.
_IMAGE_ENDINGS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.gif', '.ppm',
                  '.pgm', '.jp2', '.hdr', '.exr', '.avif')


def _dangling_image_link(folder: str, above: Tuple[str, ...] = ()) -> Optional[str]:
    """The first symbolic link to a missing file, named like an image, under ``folder``,
    walked as mmengine lists a dataset's images (hidden names skipped, linked folders
    followed), which skips such a link without a word.

    Raises:
        OSError: ``ELOOP`` for a link that leads to itself or to a folder above it (what
            mmengine's listing meets later, repeating the folder up to 40 times first).
    """
    above = above + (osp.realpath(folder), )
    for entry in os.scandir(folder):
        if entry.name.startswith('.'):
            continue
        if entry.is_symlink():
            try:
                target = os.stat(entry.path)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise
                if entry.name.lower().endswith(_IMAGE_ENDINGS):
                    return entry.path
                continue
            if stat.S_ISDIR(target.st_mode) and osp.realpath(entry.path) in above:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), entry.path)
        if entry.is_dir():
            found = _dangling_image_link(entry.path, above)
            if found:
                return found
    return None


def check_data_roots(cfg: Config, keys: Tuple[str, ...] = ('train', 'val', 'test')) -> None:
    """Raise a clear FileNotFoundError when a dataloader's ``data_root`` does not exist.

    Datasets that generate themselves on first use are skipped (unless their
    ``auto_generate`` is off). Raises :class:`DataRootError`; a :class:`DataFileError` for a
    symbolic link to a missing image in an image folder (mmengine's listing would leave the
    image out of the dataset without a word).
    """
    for name, ds in _datasets(cfg):
        if 'data_root' not in ds or name.split('_', 1)[0] not in keys:
            continue
        root = ds['data_root']
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise DataRootError(f'{name}.data_root = {root!r} is not a path (a folder name '
                                f'is text): --cfg-options {name}.data_root=/path/to/data')
        if root and osp.exists(root) and not osp.isdir(root):
            raise DataRootError(f'{name}.data_root = {root!r} is a file, not a folder: point '
                                f'data_root at the dataset\'s folder: --cfg-options '
                                f'{name}.data_root=/path/to/data')
        generated = ds.get('type') in _AUTO_GENERATED_DATASETS and ds.get('auto_generate', True)
        if root and not osp.isdir(root) and not generated:  # generated: made on first use
            raise DataRootError(
                f'{name}.data_root = {root!r} does not exist (type {ds.get("type")}). Prepare '
                'the dataset as mmseg documents (e.g. Cityscapes: leftImg8bit/ and gtFine/ with '
                '*_labelTrainIds.png from tools/dataset_converters/cityscapes.py), or point '
                f'data_root at it: --cfg-options {name}.data_root=/path/to/data')
        prefix = (ds.get('data_prefix') or {}).get('img_path')
        folder = osp.join(root or '', prefix) if isinstance(prefix, str) else None
        dangling = _dangling_image_link(folder) if folder and osp.isdir(folder) else None
        if dangling:
            raise DataFileError(
                f'image {dangling} is a symbolic link to {os.readlink(dangling)}, which does '
                'not exist: the dataset would leave it out without a word; restore its target '
                'or remove the link')


def use_checked_image_loading(cfg: Config) -> None:
    """Make every dataset pipeline load with mmaffseg's checked loaders
    (:func:`~mmaffseg.datasets.load_annotations.use_checked_loaders`).

    Configs may keep mmcv's ``LoadImageFromFile`` and mmseg's ``LoadAnnotations`` (mmseg's
    ``MMSegInferencer`` finds them by these exact names); in mmaffseg's tools the same arguments
    go to ``LoadCheckedImageFromFile`` / ``LoadCheckedAnnotations``, so an empty, truncated,
    oversized or undecodable file is reported by name (:class:`~mmaffseg.utils.DataFileError`)
    instead of a bare ``cv2.error``, and EXIF orientation is ignored (docs/datasets.md). A
    renamed ``LoadAnnotations`` checks label values against the dataset's classes (its
    ``metainfo.classes``, else its class's ``METAINFO``) unless it sets ``num_classes``
    (``num_classes=None`` switches the check off).
    """
    for _, ds in _datasets(cfg):
        use_checked_loaders(ds.get('pipeline') or [], _num_classes(ds), ds.get('ignore_index'))


def _num_classes(ds: dict) -> Optional[int]:
    """The number of classes of a dataset config (``metainfo.classes``, else the
    ``METAINFO`` of its registered class); None when unknown."""
    metainfo = ds.get('metainfo')
    classes = metainfo.get('classes') if isinstance(metainfo, dict) else None
    if classes is None and isinstance(ds.get('type'), str):
        from mmseg.registry import DATASETS
        try:
            dataset_class = DATASETS.get(ds['type'])
        except Exception:  # noqa: BLE001 - an unknown type is reported when it is built
            dataset_class = None
        classes = (getattr(dataset_class, 'METAINFO', None) or {}).get('classes')
    elif classes is None and isinstance(ds.get('type'), type):
        classes = (getattr(ds['type'], 'METAINFO', None) or {}).get('classes')
    return len(classes) if isinstance(classes, (list, tuple)) and classes else None


def build_runner(cfg: Config) -> Runner:
    """Build the runner (honouring ``runner_type``).

    On a machine without CUDA, a ``pytorch`` launch runs over gloo on CPU
    (:func:`setup_cpu_distributed`). Images are loaded with the checked loader
    (:func:`use_checked_image_loading`).
    """
    setup_cpu_distributed(cfg)
    use_checked_image_loading(cfg)
    with registry_error_hints():
        if 'runner_type' not in cfg:
            return Runner.from_cfg(cfg)
        return RUNNERS.build(cfg)


def check_loaded_checkpoint(runner: Runner, source: str, strict: bool = True,
                            resume: bool = False, finite: bool = False) -> None:
    """Make ``runner`` refuse a checkpoint that does not fit its model (or, resuming, training)
    or, with ``finite``, that holds NaN/inf weights.

    Adds a :class:`mmaffseg.engine.CheckpointCheckHook`; the opt-outs named in its messages are
    ``--non-strict`` and ``--allow-nonfinite-weights``.
    """
    from ..engine import CheckpointCheckHook
    runner.register_hook(
        CheckpointCheckHook(source, strict=strict, resume=resume, finite=finite))
