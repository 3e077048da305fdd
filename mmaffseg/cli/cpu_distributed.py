# Copyright (c) mmaffseg contributors. All rights reserved.
"""Launching: ``--launcher`` arguments and distributed runs on machines without CUDA.

mmengine's ``pytorch`` launcher assumes GPUs; :func:`setup_cpu_distributed` runs the same
``torchrun`` launch over gloo on CPU, and :func:`check_no_sync_bn` refuses synchronised BN there
with a message naming the config path.
"""
import argparse
import os
from typing import Any, List

import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from ..utils.config_errors import ConfigCheckError
from .cfg_options import CfgOptionsAction


def add_launcher_args(parser: argparse.ArgumentParser,
                      cfg_options_help: str = 'override config settings, key=value pairs'
                      ) -> argparse.ArgumentParser:
    """Add mmseg's ``--cfg-options`` (values with spaces kept: :class:`CfgOptionsAction`),
    ``--launcher`` and ``--local-rank`` arguments."""
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help=cfg_options_help)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torchrun passes --local-rank (older launchers --local_rank)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_launcher_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line; export ``LOCAL_RANK`` for mmengine when no launcher set it."""
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN')


def find_sync_bn(node: Any, path: str = 'model') -> List[str]:
    """Config paths of every ``SyncBN`` / ``MMSyncBN`` norm config under ``node``.

    Args:
        node: A config (sub)tree; lists are indexed as mmengine's ``--cfg-options`` keys
            (``model.backbone.plugins.0.cfg.norm_cfg``).
        path (str): The config path of ``node``.

    Returns:
        list[str]: The path of each dict whose ``type`` is a synchronised BN, in config order.
    """
    if isinstance(node, dict):
        if node.get('type') in SYNC_BN_TYPES:
            return [path]
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(node))
    else:
        return []
    return [found for key, value in items for found in find_sync_bn(value, f'{path}.{key}')]


def check_no_sync_bn(cfg: Config) -> None:
    """Raise a clear error when a config trains with synchronised BN, which needs GPUs.

    Multi-process training on CPU (gloo) supports ``BN``; ``SyncBN`` fails in its first forward
    pass with a message that does not name the config. The message lists every synchronised
    norm of the model and the exact ``--cfg-options`` that turn them (and mmengine's
    ``sync_bn`` conversion) into ``BN``.
    """
    where = find_sync_bn(cfg.get('model'))
    fixes = [f'{key}.type=BN' for key in where]
    if cfg.get('sync_bn'):
        where.append(f'sync_bn={cfg.sync_bn!r}')
        fixes.append('sync_bn=None')
    if where:
        raise ConfigCheckError(
            f'the config uses synchronised BatchNorm ({", ".join(where)}), which needs GPUs, '
            'but CUDA is not available: train on CPU with BN by adding '
            f'--cfg-options {" ".join(fixes)}, or run on GPUs')


#: The environment variable holding a process's global rank, per launcher.
_RANK_VARIABLES = {'pytorch': 'RANK', 'slurm': 'SLURM_PROCID', 'mpi': 'OMPI_COMM_WORLD_RANK'}


def launch_rank(launcher: str) -> int:
    """This process's global rank as its launcher set it, before any process group exists
    (0 without a launcher)."""
    variable = _RANK_VARIABLES.get(launcher)
    return int(os.environ.get(variable, 0)) if variable else 0


def init_cpu_process_group(launcher: str) -> bool:
    """Start the process group of a ``torchrun`` launch with gloo when CUDA is unavailable.

    mmengine's pytorch launcher calls ``torch.cuda.set_device``, which fails on CPU-only
    builds of torch; the runner skips its own initialisation when a group already exists.
    Does nothing for other launchers or when CUDA is available.

    Args:
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.

    Returns:
        bool: Whether this call started the group.
    """
    if launcher == 'pytorch' and not torch.cuda.is_available() and not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
        return True
    return False


def setup_cpu_distributed(cfg: Config) -> None:
    """Prepare a distributed run on a machine without CUDA (``--launcher pytorch``).

    Starts the gloo process group (:func:`init_cpu_process_group`) and makes the model
    wrapper a CPU ``MMDistributedDataParallel`` (``device_ids=None``; mmengine passes the
    local rank as a GPU id otherwise). Nothing happens with CUDA or without a launcher.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs GPUs (mmengine sets the CUDA device); '
                         'on CPU start the processes with torchrun / tools/dist_train.sh '
                         '(--launcher pytorch)')
    init_cpu_process_group(launcher)
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
