# Copyright (c) mmaffseg contributors. All rights reserved.
"""mmengine's checkpoint loaders made safe, strict weight loading, and resume-file recovery.

mmengine 0.10 reads checkpoints through ``mmengine.runner.CheckpointLoader``, one loader per
URL scheme. Its local loader calls ``torch.load`` without ``weights_only`` (safe by default only
since torch 2.6, and then unable to read mmengine's own checkpoints), and its ``http(s)://``
loader, which ``torchvision://``, ``open-mmlab://`` and ``mmcls://`` use too, calls
``torch.hub.load_state_dict_from_url``, whose ``weights_only`` defaults to False: a remote file
runs code. :func:`install_safe_checkpoint_loading` (run on ``import mmaffseg``, so also through
``custom_imports`` in mmseg's own tools and APIs) replaces the loaders of those schemes and of
``s3://``/``petrel://`` with ones that load through :func:`.safe_load.load_checkpoint_file`;
downloads are cached by the whole URL (:mod:`.download_cache`).
It depends on mmengine's loader internals and checks the version with
:func:`~mmaffseg.utils.compat.check_mmengine_version`.

Strict loading (:func:`check_state_dict`, :func:`load_model_weights`,
:func:`load_local_weights`) is for testing and inference, where a checkpoint of another model
must be an error rather than warnings.
:func:`resolve_resume_checkpoint` finds the checkpoint to resume from when ``last_checkpoint`` is
empty, unreadable or stale.

(About 340 lines: one concern, loading checkpoints strictly and safely; the pieces share the
state-dict and error helpers.)
"""
import io
import os
import os.path as osp
import re
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log

from .checkpoint_archive import inflation_problem
from .compat import check_mmengine_version
from .download_cache import cached_download, forget, recorded_sha256
from .finite import ALLOW_FLAG, check_finite_weights
from .safe_load import CheckpointError, install_safe_globals, is_trusted, load_checkpoint_file

MapLocation = Optional[Union[str, Callable, torch.device]]
_REVISE_KEYS = ((r'^module\.', ''), )
_CHECKPOINT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def load_from_local(filename: str, map_location: MapLocation = None) -> Any:
    """mmengine loader for local paths, loading safely (see :mod:`.safe_load`)."""
    return load_checkpoint_file(filename, map_location)


def load_from_http(filename: str,
                   map_location: MapLocation = None,
                   model_dir: Optional[str] = None,
                   progress: bool = False) -> Any:
    """mmengine loader for ``http(s)://`` URLs: download to torch hub's cache, load safely.

    The cache is keyed by the whole URL (:mod:`.download_cache`); a download that safe loading
    refuses (or cannot read) is removed from it. Naming the URL in ``MMAFFSEG_TRUSTED_CHECKPOINTS``
    trusts the bytes fetched for it, checked by their SHA-256 as they are loaded. As mmengine's:
    in distributed runs local rank 0 downloads first, the others then read the cached file.
    """
    from mmengine.dist import get_dist_info
    try:
        trusted = is_trusted(filename)
    except ValueError as e:  # a malformed sha256: pin in the variable
        raise CheckpointError(filename, f'cannot be loaded: {e}') from None
    rank, world_size = get_dist_info()
    if rank == 0:
        cached = cached_download(filename, model_dir, progress, verify=trusted)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached = cached_download(filename, model_dir, progress, verify=trusted)
    # trusted: the bytes loaded must be those recorded at the download (hashed as loaded)
    expected = recorded_sha256(cached) if trusted else None
    try:
        return load_checkpoint_file(cached, map_location, source=filename, sha256=expected)
    except CheckpointError:
        forget(cached)
        raise


def load_from_torchvision(filename: str, map_location: MapLocation = None) -> Any:
    """mmengine loader for ``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``)."""
    from mmengine.runner.checkpoint import get_torchvision_models
    name = filename.split('://', 1)[1]
    urls = get_torchvision_models()
    if name not in urls:
        raise CheckpointError(filename, f'names no torchvision model (known: {len(urls)}, '
                              f'e.g. {", ".join(sorted(urls)[:3])})')
    return load_from_http(urls[name], map_location)


def load_from_openmmlab(filename: str, map_location: MapLocation = None) -> Any:
    """mmengine loader for ``open-mmlab://NAME`` / ``openmmlab://NAME``."""
    from mmengine.runner.checkpoint import (
        _get_mmengine_home,
        get_deprecated_model_names,
        get_external_models,
    )
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    urls = get_external_models()
    if name not in urls:
        raise CheckpointError(filename, 'names no model of open-mmlab\'s model zoo')
    url = urls[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location)
    return load_checkpoint_file(osp.join(_get_mmengine_home(), url), map_location)


def load_from_mmcls(filename: str, map_location: MapLocation = None) -> Any:
    """mmengine loader for ``mmcls://NAME``."""
    from mmengine.runner.checkpoint import _process_mmcls_checkpoint, get_mmcls_models
    checkpoint = load_from_http(get_mmcls_models()[filename[len('mmcls://'):]], map_location)
    return _process_mmcls_checkpoint(checkpoint)


def load_from_ceph(filename: str, map_location: MapLocation = None,
                   backend: str = 'petrel') -> Any:
    """mmengine loader for ``s3://`` and ``petrel://`` paths."""
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    return load_checkpoint_file(io.BytesIO(data), map_location, source=filename)


# scheme prefixes (as mmengine registers them) -> safe loader
SAFE_LOADERS: Dict[Union[str, Tuple[str, ...]], Callable] = {
    '': load_from_local,
    ('http://', 'https://'): load_from_http,
    ('modelzoo://', 'torchvision://'): load_from_torchvision,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
    'mmcls://': load_from_mmcls,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph,
}


def install_safe_checkpoint_loading() -> None:
    """Allow-list mmengine's checkpoint content and register the safe loaders (idempotent).

    Raises:
        RuntimeError: With an mmengine outside the range these loaders were written for
            (:data:`~mmaffseg.utils.compat.MMENGINE_RANGE`).
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    check_mmengine_version('safe checkpoint loaders')
    install_safe_globals()
    for prefixes, loader in SAFE_LOADERS.items():
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)


def _model_of(model: torch.nn.Module) -> torch.nn.Module:
    """The wrapped model of a DDP/TTA wrapper, else ``model``."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def _state_dict_of(checkpoint: Any, source: str) -> Dict[str, Any]:
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(source, 'holds no state dict (a dict of named tensors, at the '
                              'top level or under "state_dict")')
    for pattern, repl in _REVISE_KEYS:
        state = {re.sub(pattern, repl, k): v for k, v in state.items()}
    return state


def _first(keys: List[str], n: int = 3) -> str:
    more = f', ... ({len(keys)} in all)' if len(keys) > n else ''
    return ', '.join(keys[:n]) + more


def _not_dense(value: Any) -> str:
    """What keeps ``value`` from being copied into a weight (a type, a layout, the meta
    device), or ``''`` for a dense tensor with data."""
    if not isinstance(value, torch.Tensor):
        return type(value).__name__
    if value.is_nested or value.layout != torch.strided:
        return 'nested' if value.is_nested else str(value.layout).replace('torch.', '')
    return 'meta device' if value.device.type == 'meta' else ''


def check_state_dict(model: torch.nn.Module, checkpoint: Any, source: str,
                     opt_out: str = 'strict=False') -> None:
    """Raise unless ``checkpoint``'s weights fit ``model`` exactly (names and shapes, dense
    tensors with data).

    Args:
        model (nn.Module): The model (DDP/TTA wrappers are looked through).
        checkpoint: A loaded checkpoint (with ``state_dict``) or a bare state dict.
        source (str): The checkpoint's file, for the message.
        opt_out (str): How the user loads it anyway, for the message.

    Raises:
        CheckpointError: Naming the missing, unexpected, mis-sized and uncopyable (sparse,
            meta, not a tensor) keys (the first few).
    """
    model = _model_of(model)
    state = _state_dict_of(checkpoint, source)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mis_sized = [f'{k} {list(state[k].shape)} vs {list(v.shape)}' for k, v in expected.items()
                 if k in state and hasattr(state[k], 'shape') and state[k].shape != v.shape]
    # what the model cannot copy (mmengine only warns, leaving the initialised weight)
    uncopyable = [f'{k} ({_not_dense(state[k])})' for k in expected
                  if k in state and _not_dense(state[k])]
    problems = [f'{len(keys)} {what} ({_first(keys)})'
                for what, keys in (('missing keys', missing), ('unexpected keys', unexpected),
                                   ('mis-sized weights (checkpoint vs model)', mis_sized),
                                   ('weights that are no dense tensors', uncopyable))
                if keys]
    if problems:
        raise CheckpointError(
            source, f'does not fit the {type(model).__name__} of the config: '
            f'{"; ".join(problems)}. Is it a checkpoint of this config? To load the weights that '
            f'fit anyway (the rest stay as initialised), use {opt_out}')


def load_model_weights(model: torch.nn.Module, filename: str, strict: bool = True,
                       map_location: MapLocation = 'cpu', opt_out: str = 'strict=False',
                       allow_nonfinite: bool = False,
                       nonfinite_opt_out: str = ALLOW_FLAG) -> Any:
    """Load a checkpoint's weights into ``model`` (safely; strictly by default; refusing
    NaN/inf weights unless allowed).

    Args:
        model (nn.Module): The model.
        filename (str): Local path or URL (any mmengine scheme).
        strict (bool): Raise :class:`CheckpointError` unless the weights fit exactly.
        map_location: Passed to :func:`torch.load`.
        opt_out (str): How the user turns strictness off, for the message.
        allow_nonfinite (bool): Load weights with NaN/inf values too. Default: False
            (:func:`~mmaffseg.utils.finite.check_finite_weights` raises).
        nonfinite_opt_out (str): How the user allows them, for the message.

    Returns:
        The loaded checkpoint.
    """
    from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint_to_model
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location)
    if not allow_nonfinite:
        check_finite_weights(checkpoint, filename, nonfinite_opt_out)
    if strict:
        check_state_dict(model, checkpoint, filename, opt_out)
    else:
        _state_dict_of(checkpoint, filename)
    return _load_checkpoint_to_model(_model_of(model), checkpoint, strict=False,
                                     revise_keys=list(_REVISE_KEYS))


def load_local_weights(model: torch.nn.Module, path: str, what: str,
                       allow_nonfinite: bool = False,
                       nonfinite_opt_out: str = ALLOW_FLAG) -> None:
    """Load a local checkpoint (``state_dict`` or a bare state dict) safely and strictly,
    naming ``what`` in every error (for runners that load several checkpoints themselves);
    weights with NaN/inf values are refused unless ``allow_nonfinite``.

    Unlike :func:`load_model_weights`, weights missing only ``num_batches_tracked`` buffers
    (converted official weights) are accepted.

    Args:
        model (nn.Module): The model.
        path (str): The checkpoint file (mmengine's, or converted official weights).
        what (str): Which checkpoint this is, for the messages (e.g. ``'--cam-checkpoint'``).
        allow_nonfinite (bool): Load weights with NaN/inf values too. Default: False.
        nonfinite_opt_out (str): How the user allows them, for the message.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        CheckpointError: The file holds no state dict, non-finite weights or does not fit
            ``model``.
    """
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'{what}: checkpoint file {path!r} does not exist')
    state = _state_dict_of(load_checkpoint_file(path, map_location='cpu'), path)
    uncopyable = [f'{k} ({_not_dense(state[k])})' for k in model.state_dict()
                  if k in state and _not_dense(state[k])]
    if uncopyable:
        raise CheckpointError(path, f'({what}) holds weights that are no dense tensors: '
                              f'{_first(uncopyable)}')
    if not allow_nonfinite:
        check_finite_weights(state, path, nonfinite_opt_out)
    # load_state_dict raises a multi-line RuntimeError on these even with strict=False
    mis_sized = [f'{k} {list(state[k].shape)} vs {list(v.shape)}'
                 for k, v in model.state_dict().items()
                 if k in state and hasattr(state[k], 'shape') and state[k].shape != v.shape]
    if mis_sized:
        raise CheckpointError(
            path, f'({what}) does not fit the {type(model).__name__} of the config: '
            f'{len(mis_sized)} mis-sized weights (checkpoint vs model: {_first(mis_sized)}); '
            'check the checkpoint against the config (e.g. its num_classes or depth)')
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing or unexpected:
        raise CheckpointError(
            path, f'({what}) does not fit the {type(model).__name__} of the config: missing '
            f'keys {missing[:5]}{"..." if len(missing) > 5 else ""}, unexpected keys '
            f'{unexpected[:5]}{"..." if len(unexpected) > 5 else ""}; check the checkpoint '
            'against the config (convert official weights with tools/model_converters/)')


def check_resumable(checkpoint: Any, source: str) -> None:
    """Raise unless ``checkpoint`` was written by training (what ``--resume`` needs)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict) or not {'epoch', 'iter'} <= set(meta):
        raise CheckpointError(
            source, 'is not a training checkpoint (it has no meta.epoch/meta.iter), so training '
            'cannot resume from it: resume from a checkpoint written by tools/train.py, or start '
            f'from its weights with --cfg-options load_from={source}')


def is_readable_checkpoint(path: str) -> bool:
    """Whether ``path`` is a complete torch zip checkpoint (every member's CRC checks out) of a
    plausible size (no member is decompressed when the archive declares far more than its size,
    see :func:`.checkpoint_archive.inflation_problem`)."""
    try:
        if inflation_problem(path) is not None:
            return False
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None and any(
                n.endswith('data.pkl') for n in archive.namelist())
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def resolve_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from in ``work_dir``, or None to start afresh.

    ``last_checkpoint`` when it names a readable file; otherwise (empty, unreadable, or naming a
    missing or broken file, e.g. after a kill during a write) the newest readable
    ``iter_N.pth``/``epoch_N.pth`` of ``work_dir``, saying so in the log.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.exists(pointer):
        return None
    try:
        with open(pointer) as f:
            named = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        named, why = '', f'cannot be read ({e})'
    else:
        why = 'is empty' if not named else None
    if named:
        if is_readable_checkpoint(named):
            return named
        why = (f'names {named}, which ' +
               ('is not a readable checkpoint' if osp.exists(named) else 'does not exist'))
    candidates = []
    for name in os.listdir(work_dir):
        match = _CHECKPOINT_NAME.match(name)
        if match:
            path = osp.join(work_dir, name)
            candidates.append((osp.getmtime(path), int(match.group(2)), path))
    for _, _, path in sorted(candidates, reverse=True):
        if is_readable_checkpoint(path):
            print_log(f'{pointer} {why}: resuming from the newest readable checkpoint {path}',
                      logger='current', level=30)
            return path
    print_log(f'{pointer} {why} and {work_dir} holds no readable iter_N.pth/epoch_N.pth: '
              'training starts afresh', logger='current', level=30)
    return None
