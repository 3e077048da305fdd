# Copyright (c) mmaffseg contributors. All rights reserved.
"""Where a PSA pseudo-label run spends its time, against the official way of running the CAMs.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018: the pipeline of
``tools/make_pseudo_labels.py`` (:class:`~mmaffseg.wsss.PseudoLabelLoop`), stage by stage, on
synthetic images (ellipses of random colours with noise) with untrained weights (seeded
PyTorch initialisation, no download):

===============  ===============================================================================
stage            what is timed (the functions the runner calls)
===============  ===============================================================================
CAM              the CAM classifier's normalisation and multi-scale, flipped CAM inference
affinity         the AffinityNet's normalisation and affinity inference
random walk      the walk of the CAM stack and the ``rw`` label / CRF unary
                 (:func:`~mmaffseg.wsss.pseudo_label_stages.stage_labels`)
dCRF             the dense CRF of the walked scores, serial, and the ``rw_crf`` label
I/O              decoding the JPEG image, writing the three label PNGs and the CAM cache
===============  ===============================================================================

Every image goes through the job twice, in alternating order: the **project** job (the CAM
network run as the config's ``test_cfg.cam_inference`` says, or ``--cam-inference``:
:class:`~mmaffseg.wsss.cam_inference.PreparedCAM`) and the **baseline**, the same job with the
CAM network run as the official code does (``infer_cam.py``: float32, contiguous NCHW, one
scale at a time, each image with its flip as a batch of 2); the other stages are the same code
in both. The second table gives the whole-job speed-up (baseline / project seconds), each
stage's share of the job in both, and the share of pixels whose ``cam``, ``rw`` and ``rw_crf``
labels are identical in both.

    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark.py wsss-pipeline \\
        configs/psa/psa-pseudo-labels_resnet38-d8_voc12aug.py \\
        configs/psa/psa-pseudo-labels_r50-d8_voc12aug.py --size 375 500 --images 2

Each config is measured in its own process; the first table gives the project job's median
wall and CPU seconds per image of each stage, the process's peak resident memory during the
stage and the hours a run of 10,000 images would take at that rate on one process (VOC
train_aug has 10,582 images), at the wall and at the CPU seconds (they agree on a quiet
machine).
"""
import argparse
import copy
import os
import os.path as osp
import statistics
import tempfile
from functools import partial
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch

from mmaffseg.cli import exit_with_error, positive_int
from mmaffseg.cli.errors import report_error
from mmaffseg.ops.psa_stages import EVALUATED_STAGES
from mmaffseg.wsss.pseudo_label_stages import (
    compute_cams,
    crf_stage_labels,
    packed_image_rgb,
    preprocess_sample,
    stage_labels,
)

from .cli import command
from .profiling import emit_result, measure, run_case

STAGES = ('CAM', 'affinity', 'random walk', 'dCRF', 'I/O')
#: The label stages compared between the two jobs, and the stage of the table they end.
LABEL_STAGES = {'cam': 'CAM', 'rw': 'random walk', 'rw_crf': 'dCRF'}
#: The two jobs each image goes through.
RUNS = ('baseline', 'project')
#: The images a run is extrapolated to.
RUN_IMAGES = 10_000
#: ``--cam-inference`` values as text -> Python values.
SETTING_VALUES = {'none': None, 'true': True, 'false': False}
SHARED = dict(size=[375, 500], threads=1)
SHARED_HELP = dict(size='synthetic image size (375 x 500: a VOC image)')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('configs', nargs='+', help='pseudo-label configs (PseudoLabelLoop)')
    parser.add_argument('--images', type=positive_int, default=2,
                        help='images per config (default 2)')
    parser.add_argument('--classes', type=positive_int, default=2,
                        help='image-level classes present per image (default 2)')
    parser.add_argument('--cam-inference', nargs='+', metavar='KEY=VALUE', default=[],
                        help='override test_cfg.cam_inference of the project job, e.g. amp=bf16 '
                        'channels_last=true (none/true/false/auto or a string)')
    parser.add_argument('--in-process', action='store_true',
                        help='measure in this process (default: one process per config)')
    parser.add_argument('--json', action='store_true', help=argparse.SUPPRESS)


def parse_settings(items: Sequence[str]) -> dict:
    """``['amp=bf16', 'fold_bn=false']`` -> ``{'amp': 'bf16', 'fold_bn': False}`` (a
    ValueError names an item without ``=``)."""
    out = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ValueError(f'--cam-inference: expected KEY=VALUE, got {item!r}')
        out[key] = SETTING_VALUES.get(value.lower(), value)
    return out


def label_agreement(a, b) -> float:
    """Percent of pixels with the same label in ``a`` and ``b`` (arrays or tensors of one
    shape)."""
    a, b = (np.asarray(x.cpu() if isinstance(x, torch.Tensor) else x) for x in (a, b))
    if a.shape != b.shape:
        raise ValueError(f'label maps of shapes {a.shape} and {b.shape} cannot be compared')
    return 100.0 * float((a == b).mean()) if a.size else 100.0


def synthetic_image(rng: np.random.Generator, size: Sequence[int], shapes: int = 6) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 image: a plain background, ``shapes`` ellipses of random colours
    and Gaussian noise (regions that CAMs can follow, unlike uniform noise)."""
    h, w = size
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(shapes):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(0.1, 0.4) * h, rng.uniform(0.1, 0.4) * w
        img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def _sample(img_bgr: np.ndarray) -> dict:
    """A packed sample as the runner's pipeline gives it (``PackSegInputs``)."""
    from mmseg.structures import SegDataSample
    h, w = img_bgr.shape[:2]
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
    inputs = torch.from_numpy(np.ascontiguousarray(img_bgr.transpose(2, 0, 1)))
    return dict(inputs=inputs, data_samples=sample)


class _Image:
    """One synthetic image going through the stages the runner runs (the outputs are kept)."""

    def __init__(self, data: dict, labels: torch.Tensor, img_file: str, out: str) -> None:
        self.data, self.labels, self.img_file, self.out = data, labels, img_file, out

    def cam(self, cam_model, cam_runner, cam_kwargs: dict) -> None:
        self.cams, self.ids = compute_cams(
            cam_runner, preprocess_sample(cam_model, self.data), self.labels, **cam_kwargs)

    def affinity(self, aff_model) -> None:
        self.aff = aff_model.predict_affinity(preprocess_sample(aff_model, self.data))

    def walk(self, radius: int, stride: int, stage_kwargs: dict) -> None:
        self.stage_labels, self.unaries = stage_labels(
            self.cams.float(), self.ids, EVALUATED_STAGES, self.aff, radius=radius,
            stride=stride, **stage_kwargs)

    def dcrf(self, cam_model, crf) -> None:
        rgb = packed_image_rgb(cam_model, self.data['inputs'])
        refined = crf.batch([self.unaries['rw_crf']], [rgb])[0]
        self.stage_labels.update(crf_stage_labels(dict(rw_crf=refined), self.ids))

    def io(self, store) -> None:
        cv2.imread(self.img_file, cv2.IMREAD_COLOR)
        for stage, label in self.stage_labels.items():
            store.write_label(osp.join(self.out, stage + '.png'), label)
        store.save_cams(osp.join(self.out, 'cams.npz'), self.cams, self.ids)


def _medians(times: Dict[str, list], peaks: Dict[str, float]) -> Dict[str, dict]:
    return {s: dict(wall=statistics.median(t[0] for t in times[s]),
                    cpu=statistics.median(t[1] for t in times[s]), peak_mb=peaks[s])
            for s in STAGES}


def measure_config(config: str, size, images: int, classes: int,
                   cam_inference: Optional[dict] = None) -> dict:
    """Per-stage medians (wall, CPU seconds) and peak RSS (MiB) over ``images`` images of the
    project and the baseline job, the label agreement of the two (percent of pixels, all
    images together) and the project's CAM settings."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmaffseg.cli import load_config
    from mmaffseg.ops.psa_defaults import PSA_DEFAULTS
    from mmaffseg.postprocessing import DenseCRF
    from mmaffseg.wsss.cam_inference import PreparedCAM, resolve_cam_inference
    from mmaffseg.wsss.label_store import PseudoLabelStore
    cfg = load_config(config)
    loop = cfg.test_cfg
    if loop.get('type') != 'PseudoLabelLoop':
        exit_with_error(f"{config}: not a pseudo-label config (test_cfg.type must be "
                        f"'PseudoLabelLoop', got {loop.get('type')!r})")
    settings = resolve_cam_inference({**(loop.get('cam_inference') or {}),
                                      **(cam_inference or {})}, 'cpu')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    aff_cfg = loop.aff_model
    aff_cfg = Config.fromfile(aff_cfg).model if isinstance(aff_cfg, str) else aff_cfg
    with torch.random.fork_rng():  # untrained, seeded weights: no checkpoint, no download
        torch.manual_seed(0)
        cam_model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
        aff_model = revert_sync_batchnorm(MODELS.build(aff_cfg)).eval()
    # the project's network is a copy: channels-last converts weights in place
    runners = dict(baseline=cam_model, project=PreparedCAM(copy.deepcopy(cam_model), settings))
    head = aff_model.decode_head
    crf = DenseCRF(**dict(loop.get('crf') or {}, workers=0))  # PSA's CRF, serial
    stage_kwargs = {k: loop[k] for k in ('cam_bg_score', 'low_alpha', 'high_alpha', 'rw_alpha',
                                         'rw_beta', 'rw_logt') if k in loop}
    cam_kwargs = dict(scales=tuple(loop.get('cam_scales', PSA_DEFAULTS.cam_scales)),
                      flip=loop.get('cam_flip', PSA_DEFAULTS.cam_flip))
    num_classes = cam_model.decode_head.num_classes  # image-level classes of the CAMs
    rng = np.random.default_rng(0)
    times = {run: {s: [] for s in STAGES} for run in RUNS}
    peaks = {run: {s: 0.0 for s in STAGES} for run in RUNS}
    same = {stage: [0, 0] for stage in LABEL_STAGES}  # identical pixels, pixels
    with tempfile.TemporaryDirectory() as tmp:
        store = PseudoLabelStore(tmp, EVALUATED_STAGES)
        warm = synthetic_image(np.random.default_rng(1), [min(64, n) for n in size])
        for run in RUNS:  # untimed: first-call costs (allocations, kernels) of both jobs
            image = _Image(_sample(warm), torch.eye(num_classes)[0], img_file=osp.join(
                tmp, 'warm.jpg'), out=osp.join(tmp, 'warm', run))
            cv2.imwrite(image.img_file, warm)
            with torch.no_grad():
                image.cam(cam_model, runners[run], cam_kwargs)
                image.affinity(aff_model)
                image.walk(head.radius, head.label_stride, stage_kwargs)
                image.dcrf(cam_model, crf)
                image.io(store)
        for i in range(images):
            img = synthetic_image(rng, size)
            img_file = osp.join(tmp, f'img_{i}.jpg')
            cv2.imwrite(img_file, img)
            labels = torch.zeros(num_classes)
            labels[rng.choice(num_classes, min(classes, num_classes), replace=False)] = 1
            outputs = {}
            for run in (RUNS if i % 2 == 0 else RUNS[::-1]):  # alternate: drift hits both
                image = _Image(_sample(img), labels, img_file, osp.join(tmp, run, str(i)))
                steps = (partial(image.cam, cam_model, runners[run], cam_kwargs),
                         partial(image.affinity, aff_model),
                         partial(image.walk, head.radius, head.label_stride, stage_kwargs),
                         partial(image.dcrf, cam_model, crf), partial(image.io, store))
                with torch.no_grad():
                    for stage, fn in zip(STAGES, steps):
                        m = measure(fn, warmup=0, repeat=1)
                        times[run][stage].append((m['wall_s'], m['cpu_s']))
                        peaks[run][stage] = max(peaks[run][stage], m['peak_mb'])
                outputs[run] = image.stage_labels
            for stage in LABEL_STAGES:
                a, b = outputs['baseline'][stage], outputs['project'][stage]
                same[stage][0] += label_agreement(a, b) / 100 * a.numel()
                same[stage][1] += a.numel()
    result = {run: _medians(times[run], peaks[run]) for run in RUNS}
    result['agreement'] = {s: 100.0 * n / total for s, (n, total) in same.items()}
    result['cam_inference'] = dict(amp=settings.precision, channels_last=settings.channels_last,
                                   fold_bn=settings.fold_bn)
    return result


def _with_total(stages: Dict[str, dict]) -> Dict[str, dict]:
    rows = dict(stages)
    rows['**total**'] = dict(wall=sum(r['wall'] for r in stages.values()),
                             cpu=sum(r['cpu'] for r in stages.values()),
                             peak_mb=max(r['peak_mb'] for r in stages.values()))
    return rows


def format_table(results: Dict[str, dict], size, images: int, threads: int) -> str:
    """Markdown: the project job's stages (one block of rows per config and a total row each,
    with the hours of a 10k-image run at the wall and at the CPU seconds per image; on a
    machine shared with other work the wall time of one thread exceeds its CPU time), then
    the comparison with the baseline job."""
    lines = [f'PSA pseudo-label pipeline, {size[0]}x{size[1]} synthetic images, untrained '
             f'weights, {threads} thread(s), median of {images} image(s) per stage', '',
             '| config | stage | wall s/img | CPU s/img | peak RSS (MiB) | '
             f'{RUN_IMAGES // 1000}k images (h, wall) | {RUN_IMAGES // 1000}k images (h, CPU) |',
             '|---|---|---|---|---|---|---|']
    for config, result in results.items():
        name = osp.splitext(osp.basename(config))[0]
        for stage, r in _with_total(result['project']).items():
            lines.append(f'| {name} | {stage} | {r["wall"]:.3f} | {r["cpu"]:.3f} | '
                         f'{r["peak_mb"]:.0f} | {r["wall"] * RUN_IMAGES / 3600:.2f} | '
                         f'{r["cpu"] * RUN_IMAGES / 3600:.2f} |')
    lines += ['', 'Against the baseline (the CAM network run the official way: float32, NCHW, '
              'one scale at a time, flip pairs of batch 2; the same images, interleaved):', '',
              '| config | stage | baseline wall s/img | project wall s/img | speed-up | '
              'share baseline | share project | labels identical |',
              '|---|---|---|---|---|---|---|---|']
    for config, result in results.items():
        name = osp.splitext(osp.basename(config))[0]
        base, proj = _with_total(result['baseline']), _with_total(result['project'])
        ended = {table_stage: label for label, table_stage in LABEL_STAGES.items()}
        for stage in base:
            b, p = base[stage]['wall'], proj[stage]['wall']
            label = ended.get(stage)
            agree = f'{result["agreement"][label]:.3f} % ({label})' if label else '-'
            lines.append(f'| {name} | {stage} | {b:.3f} | {p:.3f} | {b / p:.2f}x | '
                         f'{100 * b / base["**total**"]["wall"]:.1f} % | '
                         f'{100 * p / proj["**total**"]["wall"]:.1f} % | {agree} |')
        settings = ', '.join(f'{k}={v}' for k, v in result['cam_inference'].items())
        total_b, total_p = base['**total**'], proj['**total**']
        lines.append(f'\n{name}: project CAM settings {settings}; whole job '
                     f'**{total_b["wall"] / total_p["wall"]:.2f}x** the baseline '
                     f'({total_b["cpu"] / total_p["cpu"]:.2f}x in CPU seconds)')
    return '\n'.join(lines)


def run(args: argparse.Namespace) -> int:
    from mmaffseg.wsss.cam_inference import resolve_cam_inference
    try:
        settings = parse_settings(args.cam_inference)
        resolve_cam_inference(settings)
    except ValueError as e:  # one line, exit status 2
        return report_error(str(e) if str(e).startswith('--') else f'--cam-inference: {e}')
    results = {}
    for config in args.configs:
        if args.in_process or len(args.configs) == 1 and args.json:
            results[config] = measure_config(config, args.size, args.images, args.classes,
                                             settings)
            continue
        # a fresh process per config: the peak memory is that config's alone
        case = command('wsss-pipeline', config, '--size', *args.size, '--images', args.images,
                       '--classes', args.classes, '--threads', args.threads, '--json',
                       *(['--cam-inference', *args.cam_inference] if args.cam_inference
                         else []))
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        results[config] = run_case(case, env=env)[config]
    if args.json:
        emit_result(results)
    else:
        print(format_table(results, args.size, args.images, args.threads))
    return 0
