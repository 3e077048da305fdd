# Copyright (c) mmaffseg contributors. All rights reserved.
"""Where a PSA pseudo-label run spends its time: seconds and peak memory per image and stage.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018: the pipeline of
``tools/make_pseudo_labels.py`` (:class:`~mmaffseg.wsss.PseudoLabelLoop`), stage by stage, on
synthetic images with untrained weights (seeded PyTorch initialisation, no download):

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

    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark.py wsss-pipeline \\
        configs/psa/psa-pseudo-labels_resnet38-d8_voc12aug.py \\
        configs/psa/psa-pseudo-labels_r50-d8_voc12aug.py --size 375 500 --images 2

Each config is measured in its own process; the table gives the median wall and CPU seconds per
image of each stage, the process's peak resident memory during the stage and the hours a run
of 10,000 images would take at that rate on one process (VOC train_aug has 10,582 images), at
the wall and at the CPU seconds (they agree on a quiet machine).
"""
import argparse
import os
import os.path as osp
import statistics
import tempfile
from functools import partial
from typing import Dict

import cv2
import numpy as np
import torch

from mmaffseg.cli import exit_with_error, positive_int
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
#: The images a run is extrapolated to.
RUN_IMAGES = 10_000
SHARED = dict(size=[375, 500], threads=1)
SHARED_HELP = dict(size='synthetic image size (375 x 500: a VOC image)')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('configs', nargs='+', help='pseudo-label configs (PseudoLabelLoop)')
    parser.add_argument('--images', type=positive_int, default=2,
                        help='images per config (default 2)')
    parser.add_argument('--classes', type=positive_int, default=2,
                        help='image-level classes present per image (default 2)')
    parser.add_argument('--in-process', action='store_true',
                        help='measure in this process (default: one process per config)')
    parser.add_argument('--json', action='store_true', help=argparse.SUPPRESS)


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

    def cam(self, cam_model, cam_kwargs: dict) -> None:
        self.cams, self.ids = compute_cams(
            cam_model, preprocess_sample(cam_model, self.data), self.labels, **cam_kwargs)

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


def measure_config(config: str, size, images: int, classes: int) -> Dict[str, dict]:
    """Per-stage medians (wall, CPU seconds) and peak RSS (MiB) over ``images`` images."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmaffseg.cli import load_config
    from mmaffseg.ops.psa_defaults import PSA_DEFAULTS
    from mmaffseg.postprocessing import DenseCRF
    from mmaffseg.wsss.label_store import PseudoLabelStore
    cfg = load_config(config)
    loop = cfg.test_cfg
    if loop.get('type') != 'PseudoLabelLoop':
        exit_with_error(f"{config}: not a pseudo-label config (test_cfg.type must be "
                        f"'PseudoLabelLoop', got {loop.get('type')!r})")
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    aff_cfg = loop.aff_model
    aff_cfg = Config.fromfile(aff_cfg).model if isinstance(aff_cfg, str) else aff_cfg
    with torch.random.fork_rng():  # untrained, seeded weights: no checkpoint, no download
        torch.manual_seed(0)
        cam_model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
        aff_model = revert_sync_batchnorm(MODELS.build(aff_cfg)).eval()
    head = aff_model.decode_head
    crf = DenseCRF(**dict(loop.get('crf') or {}, workers=0))  # PSA's CRF, serial
    stage_kwargs = {k: loop[k] for k in ('cam_bg_score', 'low_alpha', 'high_alpha', 'rw_alpha',
                                         'rw_beta', 'rw_logt') if k in loop}
    cam_kwargs = dict(scales=tuple(loop.get('cam_scales', PSA_DEFAULTS.cam_scales)),
                      flip=loop.get('cam_flip', PSA_DEFAULTS.cam_flip))
    num_classes = cam_model.decode_head.num_classes  # image-level classes of the CAMs
    rng = np.random.default_rng(0)
    times = {s: [] for s in STAGES}
    peaks = {s: 0.0 for s in STAGES}
    with tempfile.TemporaryDirectory() as tmp:
        store = PseudoLabelStore(tmp, EVALUATED_STAGES)
        for i in range(images):
            img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            img_file = osp.join(tmp, f'img_{i}.jpg')
            cv2.imwrite(img_file, img)
            labels = torch.zeros(num_classes)
            labels[rng.choice(num_classes, min(classes, num_classes), replace=False)] = 1
            image = _Image(_sample(img), labels, img_file, osp.join(tmp, str(i)))
            steps = (partial(image.cam, cam_model, cam_kwargs), partial(image.affinity, aff_model),
                     partial(image.walk, head.radius, head.label_stride, stage_kwargs),
                     partial(image.dcrf, cam_model, crf), partial(image.io, store))
            with torch.no_grad():
                for stage, fn in zip(STAGES, steps):
                    m = measure(fn, warmup=0, repeat=1)
                    times[stage].append((m['wall_s'], m['cpu_s']))
                    peaks[stage] = max(peaks[stage], m['peak_mb'])
    return {s: dict(wall=statistics.median(t[0] for t in times[s]),
                    cpu=statistics.median(t[1] for t in times[s]), peak_mb=peaks[s])
            for s in STAGES}


def format_table(results: Dict[str, Dict[str, dict]], size, images: int, threads: int) -> str:
    """Markdown: one block of rows per config and a total row each, with the hours of a
    10k-image run at the wall and at the CPU seconds per image (on a machine shared with other
    work the wall time of one thread exceeds its CPU time; on a quiet one they agree)."""
    lines = [f'PSA pseudo-label pipeline, {size[0]}x{size[1]} synthetic images, untrained '
             f'weights, {threads} thread(s), median of {images} image(s) per stage', '',
             '| config | stage | wall s/img | CPU s/img | peak RSS (MiB) | '
             f'{RUN_IMAGES // 1000}k images (h, wall) | {RUN_IMAGES // 1000}k images (h, CPU) |',
             '|---|---|---|---|---|---|---|']
    for config, stages in results.items():
        name = osp.splitext(osp.basename(config))[0]
        rows = dict(stages)
        rows['**total**'] = dict(wall=sum(r['wall'] for r in stages.values()),
                                 cpu=sum(r['cpu'] for r in stages.values()),
                                 peak_mb=max(r['peak_mb'] for r in stages.values()))
        for stage, r in rows.items():
            lines.append(f'| {name} | {stage} | {r["wall"]:.3f} | {r["cpu"]:.3f} | '
                         f'{r["peak_mb"]:.0f} | {r["wall"] * RUN_IMAGES / 3600:.2f} | '
                         f'{r["cpu"] * RUN_IMAGES / 3600:.2f} |')
    return '\n'.join(lines)


def run(args: argparse.Namespace) -> int:
    results = {}
    for config in args.configs:
        if args.in_process or len(args.configs) == 1 and args.json:
            results[config] = measure_config(config, args.size, args.images, args.classes)
            continue
        # a fresh process per config: the peak memory is that config's alone
        case = command('wsss-pipeline', config, '--size', *args.size, '--images', args.images,
                       '--classes', args.classes, '--threads', args.threads, '--json')
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        results[config] = run_case(case, env=env)[config]
    if args.json:
        emit_result(results)
    else:
        print(format_table(results, args.size, args.images, args.threads))
    return 0
