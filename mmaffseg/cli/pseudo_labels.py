# Copyright (c) mmaffseg contributors. All rights reserved.
"""The logic behind ``tools/make_pseudo_labels.py`` (PSA pseudo-label runner)."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config

from mmaffseg.ops.psa_stages import CAM_STAGES, CRF_STAGES, EVALUATED_STAGES, WALK_STAGES

from .runner_setup import default_work_dir


def prepare_pseudo_label_cfg(cfg: Config,
                             config_path: str,
                             cam_checkpoint: str,
                             aff_checkpoint: Optional[str] = None,
                             out: Optional[str] = None,
                             stages: Optional[Sequence[str]] = None,
                             affinity_labels: bool = False,
                             no_crf: bool = False,
                             work_dir: Optional[str] = None,
                             launcher: str = 'none',
                             overwrite: bool = False,
                             allow_nonfinite_weights: bool = False,
                             loop_type: str = 'PseudoLabelLoop') -> Config:
    """Apply ``tools/make_pseudo_labels.py``'s options to ``cfg`` in place and return it.

    Args:
        cfg (Config): A pseudo-label config (``test_cfg.type == 'PseudoLabelLoop'``).
        config_path (str): Its path (names the default work dir).
        cam_checkpoint (str): Checkpoint of the CAM classifier.
        aff_checkpoint (str, optional): Checkpoint of the AffinityNet; needed by the walk.
        out (str, optional): Output root; default ``test_cfg.out_dir`` or
            ``<work_dir>/pseudo_labels``.
        stages (Sequence[str], optional): Stages to make; default the config's.
        affinity_labels (bool): Make the AffinityNet training labels instead
            (stages ``cam`` + ``affinity_labels``).
        no_crf (bool): Drop every stage refined by the dense CRF (``CRF_STAGES`` of
            :mod:`mmaffseg.ops.psa_stages`); refused with ``affinity_labels`` or when no
            stage would be left.
        work_dir (str, optional): Work dir for logs.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
        overwrite (bool): Recompute the stages of the output root made from other inputs
            (``test_cfg.overwrite``) instead of stopping. Default: False (the config's).
        allow_nonfinite_weights (bool): Use checkpoints with NaN/inf weights
            (``test_cfg.allow_nonfinite_weights``). Default: False (the config's).
        loop_type (str): The ``test_cfg.type`` expected (``tools/select_psa_params.py`` names
            ``PSAParamSelectionLoop`` before its ``--cfg-options`` are checked).
            Default: 'PseudoLabelLoop'.

    Raises:
        ValueError: The config is not a pseudo-label config or the options contradict.
        FileNotFoundError: A checkpoint the stages need is missing.
    """
    loop = cfg.get('test_cfg')
    if not loop or loop.get('type') != loop_type:
        raise ValueError(
            f'{config_path} is not a pseudo-label config: its test_cfg must be '
            "dict(type='PseudoLabelLoop', ...) (see configs/psa/*pseudo-labels*.py)")
    if affinity_labels and stages:
        raise ValueError('give either --affinity-labels or --stages, not both')
    if affinity_labels:
        stages = CAM_STAGES  # what the CAMs alone make: the AffinityNet's training labels
    stages = list(stages or loop.get('stages', EVALUATED_STAGES))
    if no_crf:
        if affinity_labels:
            raise ValueError('--affinity-labels needs the dense CRF: drop --no-crf')
        kept = [s for s in stages if s not in CRF_STAGES]
        if not kept:
            raise ValueError(f'--no-crf drops every stage of {stages} (each needs the dense '
                             'CRF): give stages without the CRF or drop --no-crf')
        stages = kept
    if not cam_checkpoint or not osp.isfile(cam_checkpoint):
        raise FileNotFoundError(f'--cam-checkpoint {cam_checkpoint!r} does not exist')
    if set(WALK_STAGES) & set(stages):
        if not aff_checkpoint:
            raise FileNotFoundError(
                f'stages {stages} include the random walk, which needs --aff-checkpoint (the '
                'trained AffinityNet); to make its training labels use --affinity-labels')
        if not osp.isfile(aff_checkpoint):
            raise FileNotFoundError(f'--aff-checkpoint {aff_checkpoint!r} does not exist')
    loop.stages = stages
    if overwrite:
        loop.overwrite = True
    if allow_nonfinite_weights:
        loop.allow_nonfinite_weights = True
    loop.cam_checkpoint = cam_checkpoint
    loop.aff_checkpoint = aff_checkpoint
    cfg.work_dir = default_work_dir(cfg, config_path, work_dir)
    if out is not None:
        loop.out_dir = out
    elif not loop.get('out_dir'):
        loop.out_dir = osp.join(cfg.work_dir, 'pseudo_labels')
    cfg.launcher = launcher
    cfg.load_from = None  # the loop loads both checkpoints itself
    cfg.resume = False
    if launcher != 'none' and cfg.get('model_wrapper_cfg') is None:
        # inference only: DDP without device_ids works on CPU (gloo) and on one GPU per process
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False)
    return cfg
