# Copyright (c) mmaffseg contributors. All rights reserved.
"""Checks that stop a tool on a config that cannot work, before anything is built.

Each raises a one-line :class:`~mmaffseg.utils.ConfigCheckError` (or
:class:`~mmaffseg.utils.ConfigFileError`) naming the file or the setting, which the tools
report with exit status 2 (:func:`mmaffseg.cli.errors.config_errors_exit`):

* :func:`read_config_file`: a file whose suffix is none of the config formats mmengine reads
  (``.py``, ``.json``, ``.yaml``, ``.yml``), a ``_base_`` file that does not exist or is a
  folder, ``_base_`` files that inherit each other in a circle, a syntax error (file and line)
  in the config or one of its bases;
* :func:`check_untyped_settings`: a misspelt key in a dict without a ``type`` that mmengine
  unpacks into a call (``train_dataloader.batchsize``, ``randomness.seeds``), which is
  otherwise a ``TypeError`` deep in the runner;
* :func:`check_train_settings`: a learning rate that is negative or not a finite number, a
  ``train_cfg.max_iters`` / ``max_epochs`` that is not a whole number >= 1, and a training
  crop size larger than ``model.data_preprocessor.size`` (mmseg pads each crop to that size;
  a larger crop stops training mid-epoch with "stack expects each tensor to be equal size").
"""
import ast
import difflib
import math
import os.path as osp
import re
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config

from ..utils.config_errors import ConfigCheckError, ConfigFileError

#: The config formats ``mmengine.Config.fromfile`` reads (by the file's suffix, case-sensitive)
CONFIG_SUFFIXES = ('.py', '.json', '.yaml', '.yml')


def _syntax_error_file(path: str, seen: Optional[set] = None) -> Optional[Tuple[str, SyntaxError]]:
    """The first file with a syntax error among ``path`` and its local ``_base_`` files."""
    seen = set() if seen is None else seen
    if path in seen or not osp.isfile(path):
        return None
    seen.add(path)
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        return path, e
    for bases in _base_assignments(tree, path):
        if bases is None:
            return None
        for base in bases:
            found = _syntax_error_file(base, seen)
            if found:
                return found
    return None


def _base_assignments(tree: ast.Module, path: str) -> Iterator[Optional[List[str]]]:
    """For each ``_base_ = ...`` of a parsed config file, the local files it names
    (absolute paths; package-scoped ``mmseg::`` entries left out), or None when it is not a
    literal."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], 'id', None) == '_base_'):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:
                yield None
                continue
            bases = [bases] if isinstance(bases, str) else list(bases)
            yield [osp.normpath(osp.join(osp.dirname(path), base)) for base in bases
                   if isinstance(base, str) and '::' not in base]


def _local_bases(path: str) -> List[str]:
    """The local ``_base_`` files a config file names (absolute paths; package-scoped
    ``mmseg::`` entries and unreadable files give none)."""
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return []
    for bases in _base_assignments(tree, path):
        return bases or []
    return []


def _base_cycle(path: str, chain: Tuple[str, ...] = ()) -> Optional[List[str]]:
    """A cycle of ``_base_`` files reached from ``path`` (the files, the first repeated at
    the end), or None."""
    if path in chain:
        return list(chain[chain.index(path):]) + [path]
    for base in _local_bases(path):
        cycle = _base_cycle(base, chain + (path, ))
        if cycle:
            return cycle
    return None


def read_config_file(path: str) -> Config:
    """``Config.fromfile`` whose errors in the files name them.

    Raises:
        ConfigFileError: ``path`` is not a ``.py`` / ``.json`` / ``.yaml`` / ``.yml`` file
            (mmengine's raw ``OSError``: "Only py/yml/yaml/json type are supported now!"), or
            a ``_base_`` file (or another file the config reads) does not exist or is a
            folder.
        ConfigCheckError: A syntax error, with the file and the line; ``_base_`` files that
            inherit each other in a circle.
    """
    suffix = osp.splitext(path)[1]
    if suffix not in CONFIG_SUFFIXES:
        raise ConfigFileError(
            f'{path} is not a config file ({f"suffix {suffix}" if suffix else "no suffix"}); '
            f'give a {"/".join(CONFIG_SUFFIXES)} config, e.g. '
            'configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py')
    cycle = _base_cycle(osp.abspath(path))
    if cycle:  # mmengine would recurse until Python's limit (RecursionError)
        raise ConfigCheckError(f'config {path}: its _base_ files inherit each other in a '
                               f'circle: {" -> ".join(cycle)}; remove one of these _base_ '
                               'entries')
    try:
        return Config.fromfile(path)
    except ConfigFileError:
        raise  # already names the file (e.g. a missing ``mmaffseg::`` config in a checkout)
    except FileNotFoundError as e:
        # mmengine's check_file_exist gives only a message: 'file "X" does not exist'
        named = re.search(r'file "(.*)" does not exist', str(e))
        missing = osp.normpath(e.filename or (named.group(1) if named else '')) or str(e)
        problem = ('is a folder, not a config file' if osp.isdir(missing) else
                   'does not exist')
        raise ConfigFileError(f'{path} reads {missing}, which {problem} (check its _base_ '
                              'list: paths are relative to the config\'s folder)') from e
    except SyntaxError as e:
        where, error = _syntax_error_file(osp.abspath(path)) or (path, e)
        text = (error.text or '').strip()
        raise ConfigCheckError(f'config {where}, line {error.lineno}: {error.msg}'
                               f'{": " + text if text else ""}') from e


def _dataloader_keys() -> set:
    from torch.utils.data import DataLoader
    names = _parameters(DataLoader.__init__)
    # popped by mmengine's Runner.build_dataloader before it calls DataLoader
    return names | {'num_batch_per_epoch', 'disable_subprocess_warning'}


def _randomness_keys() -> set:
    from mmengine.runner import Runner
    return _parameters(Runner.set_randomness)


def _env_cfg_keys() -> set:
    return {'cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'}  # Runner.setup_env


def _parameters(function: Callable) -> set:
    import inspect
    return {p for p in inspect.signature(function).parameters if p != 'self'}


#: Top-level dicts without a ``type`` -> (what reads them, the keys it accepts).
UNTYPED_SETTINGS: Dict[str, Tuple[str, Callable[[], set]]] = {
    'train_dataloader': ('torch\'s DataLoader, through mmengine', _dataloader_keys),
    'val_dataloader': ('torch\'s DataLoader, through mmengine', _dataloader_keys),
    'test_dataloader': ('torch\'s DataLoader, through mmengine', _dataloader_keys),
    'randomness': ('mmengine Runner.set_randomness', _randomness_keys),
    'env_cfg': ('mmengine Runner.setup_env', _env_cfg_keys),
}


def check_untyped_settings(cfg: Config) -> None:
    """Raise :class:`ConfigCheckError` on a key of a :data:`UNTYPED_SETTINGS` dict that what
    reads it does not take, naming the closest accepted keys."""
    for name, (reader, keys) in UNTYPED_SETTINGS.items():
        settings = cfg.get(name)
        if not isinstance(settings, dict) or 'type' in settings:
            continue
        accepted = keys()
        for key in settings:
            if key in accepted:
                continue
            close = difflib.get_close_matches(str(key), sorted(accepted), n=3, cutoff=0.6)
            hint = (f'did you mean {" or ".join(f"{name}.{c}" for c in close)}?' if close else
                    f'it takes {", ".join(sorted(accepted))}')
            raise ConfigCheckError(f'{name}.{key}: no such setting ({name} goes to {reader}, '
                                   f'which takes no argument {key!r}); {hint}')


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_lr(cfg: Config) -> None:
    wrapper = cfg.get('optim_wrapper')
    if not isinstance(wrapper, dict):
        return
    # one optimizer, or a dict of them (mmengine's OptimWrapperDict configs)
    wrappers = ([('optim_wrapper', wrapper)] if 'optimizer' in wrapper or 'type' in wrapper
                else [(f'optim_wrapper.{k}', v) for k, v in wrapper.items()
                      if isinstance(v, dict)])
    for name, ow in wrappers:
        optimizer = ow.get('optimizer')
        if not isinstance(optimizer, dict) or 'lr' not in optimizer:
            continue
        lr = optimizer['lr']
        if not _number(lr) or not math.isfinite(lr) or lr < 0:
            raise ConfigCheckError(
                f'{name}.optimizer.lr = {lr!r}: the learning rate must be a finite number >= 0 '
                '(a negative one climbs the loss); e.g. '
                f'--cfg-options {name}.optimizer.lr=0.01')


def dataset_configs(cfg: Config) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset cfg) of every dataloader, looking through dataset wrappers."""
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader or 'dataset' not in loader:
            continue
        stack = [(f'{key}.dataset', loader['dataset'])]
        while stack:
            name, ds = stack.pop()
            if 'dataset' in ds:
                stack.append((f'{name}.dataset', ds['dataset']))
            for i, sub in enumerate(ds.get('datasets', [])):
                stack.append((f'{name}.datasets[{i}]', sub))
            yield name, ds


def _hw(value) -> Optional[Tuple[int, int]]:
    if _number(value):
        return int(value), int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_number, value)):
        return int(value[0]), int(value[1])
    return None


def _crop_sizes(pipeline, where: str) -> Iterator[Tuple[str, Tuple[int, int]]]:
    """(config key, (h, w)) of every ``crop_size`` of a pipeline, also inside wrapping
    transforms (``RandomChoice``, ``RandomApply``: their ``transforms``)."""
    for i, transform in enumerate(pipeline or []):
        if isinstance(transform, (list, tuple)):
            yield from _crop_sizes(transform, f'{where}.{i}')
        if not isinstance(transform, dict):
            continue
        crop = _hw(transform.get('crop_size'))
        if crop is not None:
            yield f'{where}.{i}.crop_size ({transform.get("type")})', crop
        if isinstance(transform.get('transforms'), (list, tuple)):
            yield from _crop_sizes(transform['transforms'], f'{where}.{i}.transforms')


def _check_crop_size(cfg: Config) -> None:
    preprocessor = (cfg.get('model') or {}).get('data_preprocessor') or {}
    size = _hw(preprocessor.get('size'))
    if size is None:
        return
    crops: List[Tuple[str, Tuple[int, int]]] = []
    for name, ds in dataset_configs(cfg):
        if name.startswith('train_dataloader'):
            crops += _crop_sizes(ds.get('pipeline'), f'{name}.pipeline')
    for where, crop in crops:
        # a smaller crop is padded up to the size (mmseg's stack_batch), a larger one is not
        if crop[0] > size[0] or crop[1] > size[1]:
            raise ConfigCheckError(
                f'{where} is {crop} but model.data_preprocessor.size is {size}: each training '
                'crop is padded to that size, and a crop larger than it stops training with '
                '"stack expects each tensor to be equal size"; make the size at least the '
                'crop (usually both the same (h, w))')


def _check_schedule(cfg: Config) -> None:
    """``train_cfg.max_iters`` / ``max_epochs``: a whole number >= 1 (mmengine trains nothing
    for 0 or -1 and exits 0, takes ``True`` as 1 and stops on 2.5 with an AssertionError)."""
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict):
        return
    for key in ('max_iters', 'max_epochs'):
        if key not in train_cfg:
            continue
        value = train_cfg[key]
        if not _number(value) or not math.isfinite(value) or value != int(value) or value < 1:
            raise ConfigCheckError(
                f'train_cfg.{key} = {value!r}: the length of training must be a whole number '
                f'>= 1; e.g. --cfg-options train_cfg.{key}=1000')


def check_train_settings(cfg: Config) -> None:
    """Raise :class:`ConfigCheckError` on a training setting that cannot work (module
    docstring): a bad learning rate or length of training, a crop size larger than the
    preprocessor's."""
    _check_lr(cfg)
    _check_schedule(cfg)
    _check_crop_size(cfg)
