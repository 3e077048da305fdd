# Copyright (c) mmaffseg contributors. All rights reserved.
"""What each folder of a pseudo-label run depends on: its provenance record, stage by stage.

:class:`~mmaffseg.wsss.PseudoLabelLoop` (``tools/make_pseudo_labels.py``) and
:class:`~mmaffseg.wsss.PSAParamSelectionLoop` (``tools/select_psa_params.py``) record in
``out_dir/provenance.json`` (:mod:`mmaffseg.utils.provenance`) the inputs that change the files
of each stage, and check them before any image (:mod:`mmaffseg.utils.folder_claim`): a stage
whose inputs match is reused, one whose inputs changed stops the run (exit code 2) unless
``--overwrite`` asks to recompute it. A stage also depends on the mmaffseg version and on the
inputs of its sources.

===================  ==============================================================  ========
stage                inputs (checkpoints by the sha256 of their contents)            sources
===================  ==============================================================  ========
``cams``             CAM checkpoint, CAM model config, dataset config,
                     ``cam_scales``, ``cam_flip``
``cam``              ``cam_bg_score``                                                cams
``affinity_labels``  ``low_alpha``, ``high_alpha``, ``ignore_index``, the dense CRF  cams
``rw``               AffinityNet checkpoint and model config (its radius and         cams
                     stride), ``rw_alpha``, ``rw_beta``, ``rw_logt``
``rw_crf``           as ``rw``, and the dense CRF                                    cams
``report``           the image list (of ``table1.md``, ``metrics.json``,             the
                     ``failures.txt``: rewritten by every run from the outputs)      stages
===================  ==============================================================  ========

Left out, as they change how the work is done but not its result: ``crf.workers`` (and
``start_method``), ``chunk_size``, ``num_threads``, ``save_cams``, the launcher; the model
configs' ``init_cfg``, ``pretrained`` and ``train_cfg`` (the checkpoints are loaded strictly);
the dataset's ``indices`` and loading options (an image's outputs depend on that image alone,
so a run on more images reuses the ones done).
"""
import inspect
from typing import Any, Dict, Mapping, Optional, Sequence

from mmaffseg.postprocessing.dense_crf import DenseCRF
from mmaffseg.utils.provenance import Provenance, digest_of, file_sha256

from .label_store import CAM_CACHE_DIR, OUT_DIR_ARGUMENT, STAGE_DIRS
from .pseudo_label_stages import WALK_STAGES

#: How the user asks to recompute mismatching stages.
OVERWRITE_HINT = '--overwrite (test_cfg.overwrite=True)'
#: The record's stage of the CAM cache.
CAMS_STAGE = CAM_CACHE_DIR
#: The record's stage of the files every run rewrites (the evaluation, the failures).
REPORT_STAGE = 'report'
#: The loop settings each stage's files depend on (besides checkpoints and configs).
STAGE_SETTINGS = {
    CAMS_STAGE: ('cam_scales', 'cam_flip'),
    'cam': ('cam_bg_score', ),
    'affinity_labels': ('low_alpha', 'high_alpha', 'ignore_index'),
    'rw': ('rw_alpha', 'rw_beta', 'rw_logt'),
    'rw_crf': ('rw_alpha', 'rw_beta', 'rw_logt'),
}
#: Stages refined by the dense CRF.
CRF_STAGES = ('affinity_labels', 'rw_crf')
#: Model config keys without effect once a checkpoint is loaded strictly.
MODEL_KEYS_WITHOUT_EFFECT = ('init_cfg', 'pretrained', 'train_cfg')
#: Dataset config keys that choose or load images without changing any image's outputs.
DATASET_KEYS_WITHOUT_EFFECT = ('indices', 'lazy_init', 'serialize_data', 'max_refetch')
#: DenseCRF arguments that change how it runs, not what it computes.
CRF_EXECUTION_ARGS = ('workers', 'start_method')


def config_inputs(cfg: Any, drop: Sequence[str] = ()) -> Any:
    """A config (dict) as plain data for a record: the keys in ``drop`` removed at any depth,
    lists of dicts (pipelines) keyed by position, so that a change names its key
    (``data.pipeline.2.label_file``)."""
    if isinstance(cfg, Mapping):
        return {str(k): config_inputs(v, drop) for k, v in cfg.items() if k not in drop}
    if isinstance(cfg, (list, tuple)):
        items = [config_inputs(v, drop) for v in cfg]
        if any(isinstance(v, dict) for v in items):
            return {str(i): v for i, v in enumerate(items)}
        return items
    return cfg


def crf_inputs(crf: DenseCRF) -> Dict[str, Any]:
    """The dense CRF's settings that change its result (as the instance holds them)."""
    names = [n for n in inspect.signature(DenseCRF).parameters if n not in CRF_EXECUTION_ARGS]
    return {name: getattr(crf, name) for name in names}


def walk_inputs(aff_checkpoint: str, aff_model: Mapping) -> Dict[str, Any]:
    """The AffinityNet's inputs: its checkpoint's contents and its model config."""
    return dict(aff_checkpoint=file_sha256(aff_checkpoint),
                aff_model=config_inputs(aff_model, MODEL_KEYS_WITHOUT_EFFECT))


def image_list_inputs(images: Sequence[str]) -> Dict[str, Any]:
    """A digest of an image list (and its length)."""
    return dict(images=digest_of(list(images)), num_images=len(images))


def pseudo_label_provenance(out_dir: str,
                            stages: Sequence[str],
                            settings: Mapping[str, Any],
                            cam_checkpoint: str,
                            cam_model: Mapping,
                            dataset: Mapping,
                            crf: DenseCRF,
                            aff_checkpoint: Optional[str] = None,
                            aff_model: Optional[Mapping] = None,
                            scored_images: Optional[Sequence[str]] = None,
                            tool: str = 'PseudoLabelLoop') -> Provenance:
    """The provenance record of a pseudo-label folder with the stages of this run declared.

    Args:
        out_dir (str): The output root.
        stages (Sequence[str]): The label stages this run writes (keys of
            :data:`~mmaffseg.wsss.label_store.STAGE_DIRS`); ``cams`` is always declared.
        settings (Mapping): The loop's settings named in :data:`STAGE_SETTINGS`.
        cam_checkpoint (str): The CAM classifier's checkpoint.
        cam_model (Mapping): Its model config.
        dataset (Mapping): The dataset config (images, pipeline).
        crf (DenseCRF): The dense CRF of the CRF stages.
        aff_checkpoint (str, optional): The AffinityNet's checkpoint; needed by ``rw`` and
            ``rw_crf``.
        aff_model (Mapping, optional): Its model config.
        scored_images (Sequence[str], optional): The images of the run, when it writes the
            report (declares ``report``).
        tool (str): What writes the folder, recorded.

    Returns:
        Provenance: The record, stages declared, not yet checked.
    """
    prov = Provenance(out_dir, OUT_DIR_ARGUMENT, tool, OVERWRITE_HINT)
    models = {CAMS_STAGE: dict(
        cam_checkpoint=file_sha256(cam_checkpoint),
        cam_model=config_inputs(cam_model, MODEL_KEYS_WITHOUT_EFFECT),
        data=config_inputs(dataset, DATASET_KEYS_WITHOUT_EFFECT))}
    if set(WALK_STAGES) & set(stages):
        walk = walk_inputs(aff_checkpoint, aff_model)
        models.update({stage: walk for stage in WALK_STAGES})
    for stage in (CAMS_STAGE, ) + tuple(s for s in STAGE_DIRS if s in stages):
        inputs = dict(models.get(stage, {}))
        inputs.update({name: settings[name] for name in STAGE_SETTINGS[stage]})
        if stage in CRF_STAGES:
            inputs['crf'] = crf_inputs(crf)
        prov.stage(stage, inputs, () if stage == CAMS_STAGE else (CAMS_STAGE, ))
    if scored_images is not None:
        prov.stage(REPORT_STAGE, image_list_inputs(scored_images),
                   [s for s in STAGE_DIRS if s in stages])
    return prov
