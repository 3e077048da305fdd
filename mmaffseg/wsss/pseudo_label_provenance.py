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
                     ``cam_scales``, ``cam_flip``, ``cam_resize`` (how scales are
                     made), ``cam_precision`` unless float32
                     (``cam_inference.amp``)
``cam``              ``cam_bg_score``                                                cams
``affinity_labels``  ``low_alpha``, ``high_alpha``, ``ignore_index``, the dense CRF  cams
``rw``               AffinityNet checkpoint and model config (its radius and         cams
                     stride), ``rw_alpha``, ``rw_beta``, ``rw_logt``
``rw_crf``           as ``rw``, and the dense CRF                                    cams
``report``           the image list (of ``table1.md``, ``metrics.json``,             the
                     ``failures.txt``: rewritten by every run from the outputs)      stages
===================  ==============================================================  ========

The files behind the settings are recorded by content too: the CAM stage records the sha256
of every file a dataset setting named ``*_file`` points at (e.g. PSA's image-level label file
``label_file``; not ``ann_file``, which only chooses images), and ``provenance_images.json``
(:func:`check_image_record`) beside the record holds the sha256 of every image and mask whose
outputs the folder holds: an image rewritten under the same name (its outputs would be skipped
as done) stops the run before any work, or with ``--overwrite`` its outputs are recomputed.

Left out, as they change how the work is done but not its result: ``crf.workers`` (and
``start_method``), ``chunk_size``, ``overlap_crf``, ``num_threads``, ``save_cams``,
``cam_inference.channels_last`` and ``fold_bn`` (float32 rounding only), the launcher; the model
configs' ``init_cfg``, ``pretrained`` and ``train_cfg`` (the checkpoints are loaded strictly);
the dataset's ``indices`` and loading options (an image's outputs depend on that image alone,
so a run on more images reuses the ones done).
"""
import errno
import inspect
import json
import logging
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from mmengine.logging import print_log

from mmaffseg.ops.psa_stages import CRF_STAGES, PSA_STAGES, STAGE_NAMES, WALK_STAGES
from mmaffseg.postprocessing.dense_crf import DenseCRF
from mmaffseg.utils.atomic_io import atomic_write_bytes
from mmaffseg.utils.provenance import (
    Provenance,
    ProvenanceError,
    digest_of,
    file_sha256,
    files_sha256,
)

from .label_store import CAM_CACHE_DIR, OUT_DIR_ARGUMENT

#: How the user asks to recompute mismatching stages.
OVERWRITE_HINT = '--overwrite (test_cfg.overwrite=True)'
#: The record's stage of the CAM cache.
CAMS_STAGE = CAM_CACHE_DIR
#: The record's stage of the files every run rewrites (the evaluation, the failures).
REPORT_STAGE = 'report'
#: The loop settings each stage's files depend on (besides checkpoints and configs).
STAGE_SETTINGS = {CAMS_STAGE: ('cam_scales', 'cam_flip'),
                  **{stage.name: stage.settings for stage in PSA_STAGES}}
#: The CAM precision the record leaves out (the reference computation).
DEFAULT_CAM_PRECISION = 'fp32'
#: How the scaled CAM inputs are made (the reference's: PIL bicubic on the uint8 image);
#: recorded so that CAMs cached by another resize are never reused.
CAM_RESIZE = 'pil_bicubic'
#: Model config keys without effect once a checkpoint is loaded strictly.
MODEL_KEYS_WITHOUT_EFFECT = ('init_cfg', 'pretrained', 'train_cfg')
#: Dataset config keys that choose or load images without changing any image's outputs.
DATASET_KEYS_WITHOUT_EFFECT = ('indices', 'lazy_init', 'serialize_data', 'max_refetch')
#: DenseCRF arguments that change how it runs, not what it computes.
CRF_EXECUTION_ARGS = ('workers', 'start_method')
#: Dataset config keys ending in ``_file`` that only choose images (not recorded by content).
DATASET_FILES_WITHOUT_EFFECT = ('ann_file', )
#: Beside the record: the sha256 of the images (and masks) whose outputs the folder holds.
IMAGE_RECORD = 'provenance_images.json'


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


def data_file_inputs(dataset: Any) -> Dict[str, str]:
    """The sha256 of every existing file a dataset config names under a key ending in
    ``_file`` (e.g. ``pipeline.2.label_file``), except :data:`DATASET_FILES_WITHOUT_EFFECT`;
    a relative path is looked up as given, then under the dataset's ``data_root``."""
    root = dataset.get('data_root') if isinstance(dataset, Mapping) else None
    out: Dict[str, str] = {}

    def walk(value: Any, prefix: str) -> None:
        items = (value.items() if isinstance(value, Mapping) else
                 enumerate(value) if isinstance(value, (list, tuple)) else ())
        for key, item in items:
            name = f'{prefix}{key}'
            if isinstance(item, (Mapping, list, tuple)):
                walk(item, f'{name}.')
            elif (isinstance(item, str) and str(key).endswith('_file')
                  and key not in DATASET_FILES_WITHOUT_EFFECT):
                for path in (item, osp.join(str(root or ''), item)):
                    if osp.isfile(path):
                        out[name] = file_sha256(path)
                        break

    walk(dataset, '')
    return out


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
            :data:`~mmaffseg.ops.psa_stages.STAGE_NAMES`); ``cams`` is always declared.
        settings (Mapping): The loop's settings named in :data:`STAGE_SETTINGS`, and
            ``cam_precision`` (recorded unless :data:`DEFAULT_CAM_PRECISION`).
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
    data_files = data_file_inputs(dataset or {})
    if data_files:
        models[CAMS_STAGE]['data_files'] = data_files
    if set(WALK_STAGES) & set(stages):
        walk = walk_inputs(aff_checkpoint, aff_model)
        models.update({stage: walk for stage in WALK_STAGES})
    for stage in (CAMS_STAGE, ) + tuple(s for s in STAGE_NAMES if s in stages):
        inputs = dict(models.get(stage, {}))
        inputs.update({name: settings[name] for name in STAGE_SETTINGS[stage]})
        precision = settings.get('cam_precision', DEFAULT_CAM_PRECISION)
        if stage == CAMS_STAGE:
            inputs['cam_resize'] = CAM_RESIZE
            if precision != DEFAULT_CAM_PRECISION:
                inputs['cam_precision'] = precision
        if stage in CRF_STAGES:
            inputs['crf'] = crf_inputs(crf)
        prov.stage(stage, inputs, () if stage == CAMS_STAGE else (CAMS_STAGE, ))
    if scored_images is not None:
        prov.stage(REPORT_STAGE, image_list_inputs(scored_images),
                   [s for s in STAGE_NAMES if s in stages])
    return prov


def _read_image_record(path: str) -> Optional[Dict[str, str]]:
    """The recorded ``{file: sha256}``, None without a record (raises on an unreadable one)."""
    try:
        with open(path) as f:
            record = json.load(f)
        if not (isinstance(record, dict) and all(
                isinstance(v, str) for v in record.values())):
            raise TypeError('not a mapping of files to sha256 digests')
        return record
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as e:
        raise ProvenanceError(
            errno.EINVAL, f'{OUT_DIR_ARGUMENT}: the image record {path} cannot be read '
            f'({type(e).__name__}: {e}); rerun with {OVERWRITE_HINT} to recompute the outputs '
            f'of these images, or choose another {OUT_DIR_ARGUMENT}') from None


def check_image_record(out_dir: str, images: Sequence[Tuple[Sequence[str], Sequence[str]]],
                       overwrite: bool = False) -> List[str]:
    """Check that the images (and masks) of this run are those the folder's outputs were made
    from, before any work, and record them (``out_dir/provenance_images.json``).

    A file is read only when its size, mtime or ctime changed since it was last hashed
    (:func:`~mmaffseg.utils.provenance.files_sha256`). Outputs of a folder without this record
    (an older version) are taken as they are; the files are recorded from now on.

    Args:
        out_dir (str): The output root (its lock held).
        images (Sequence[tuple]): Per image, its input files (the image, its mask; missing
            ones are skipped) and its output files under ``out_dir`` (CAM cache, labels).
        overwrite (bool): Remove the outputs of changed images (to be recomputed) instead of
            stopping.

    Returns:
        list[str]: The image files whose outputs were removed.

    Raises:
        ProvenanceError: An image with outputs changed (or the record cannot be read) and
            ``overwrite`` is False.
    """
    path = osp.join(out_dir, IMAGE_RECORD)
    try:
        recorded = _read_image_record(path)
        unreadable = False
    except ProvenanceError:
        if not overwrite:
            raise
        recorded, unreadable = None, True  # every image with outputs is recomputed
    files = sorted({f for inputs, _ in images for f in inputs if osp.isfile(f)})
    try:
        digests = files_sha256(files)
    except OSError as e:
        raise ProvenanceError(
            e.errno or errno.EIO, f'{OUT_DIR_ARGUMENT}: cannot read {e.filename} to check it '
            f'against the outputs of {out_dir} ({e.strerror or e})') from None
    changed, reasons = [], []
    for inputs, outputs in images:
        diff = [f for f in inputs if recorded is not None and f in digests
                and recorded.get(f, digests[f]) != digests[f]]
        if (diff or unreadable) and any(osp.isfile(o) for o in outputs):
            changed.append((inputs, outputs))
            reasons += [f'{f}: {recorded[f][:19]} -> {digests[f][:19]}' for f in diff[:1]]
    if changed and not overwrite:
        raise ProvenanceError(
            errno.EEXIST, f'{OUT_DIR_ARGUMENT}: the folder {out_dir} holds outputs of '
            f'{len(changed)} image(s) whose files changed since they were made (e.g. '
            f'{reasons[0]}); rerun with {OVERWRITE_HINT} to recompute them, or choose another '
            f'{OUT_DIR_ARGUMENT}')
    for _, outputs in changed:
        for output in outputs:
            if osp.lexists(output):
                os.remove(output)
    if changed:
        print_log(f'pseudo labels: overwrite: removed the outputs of {len(changed)} image(s) '
                  f'of {out_dir} whose files changed; recomputing them', logger='current',
                  level=logging.WARNING)
    record = {**(recorded or {}), **digests}
    try:
        atomic_write_bytes(path, json.dumps(record, indent=0, sort_keys=True).encode())
    except OSError as e:
        raise ProvenanceError(
            e.errno or errno.EIO, f'{OUT_DIR_ARGUMENT}: the image record {path} cannot be '
            f'written ({type(e).__name__}: {e.strerror or e}); fix the folder or choose another '
            f'{OUT_DIR_ARGUMENT}') from None
    return [inputs[0] for inputs, _ in changed if inputs]
