# Copyright (c) mmaffseg contributors. All rights reserved.
"""The whole PSA / AffinityNet pipeline on the synthetic street scenes, on CPU, in one command.

    python tools/wsss_demo.py [--work-dir work_dirs/psa_demo] [--cam-iters 1000]
                              [--aff-iters 300] [--num-images 60] [--threads 2] [--no-select]

Steps (each is the documented command it prints, so every step can be rerun by hand):

1. ``tools/train.py`` the CAM classifier on image-level labels
   (``configs/psa/psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py``);
2. ``tools/select_psa_params.py --sweep affinity``: low / high alpha chosen on the *selection
   set*, the first ``--num-images`` training images with their masks; then
   ``tools/make_pseudo_labels.py --affinity-labels`` with them: multi-scale CAMs -> low/high-
   alpha dCRF -> affinity labels for all training images;
3. ``tools/train.py`` AffinityNet on them, its backbone starting from the CAM network's (the
   demo has no ImageNet weights);
4. ``tools/select_psa_params.py --sweep walk``: walk alpha and beta chosen on the selection set;
   ``tools/make_pseudo_labels.py`` with them: CAM -> random walk -> dCRF pseudo labels of the
   selection images (the labels a second stage trains on) and of the validation images, which
   nothing before has read the masks of: their Table 1 is the held-out result.

The networks see image-level labels only, of all training images, the selection images
included (PSA makes pseudo labels *for* the training images; choosing the settings on a few of
them with masks is the usual "small labelled subset" protocol). The validation masks are read
only by the final scoring (and by the CAM training's own validation printout, which decides
nothing). ``--no-select`` keeps the config's alphas and beta instead of the two sweeps.

It prints PSA's Table 1 (mIoU of CAM, CAM + RW, CAM + RW + dCRF) on the validation images at
the end. The synthetic dataset (300 + 60 images of 128 x 256) is generated on first use. Steps
whose outputs exist are skipped, so an interrupted demo resumes; delete ``--work-dir`` to start
over (the affinity labels are matched by name: delete them after changing the alphas).
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time
from typing import List, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = 'configs/psa/psa-{}_r18-d8-slim_quickstart_synthetic-wsss-128x256.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='PSA pipeline demo on synthetic data (CPU)')
    parser.add_argument('--work-dir', default='work_dirs/psa_demo')
    parser.add_argument('--cam-iters', type=int, default=1000, help='CAM training iterations')
    parser.add_argument('--aff-iters', type=int, default=300,
                        help='AffinityNet training iterations')
    parser.add_argument('--num-images', type=int, default=60,
                        help='the first N training images: the selection set (their masks choose '
                        'the alphas and beta) and the pseudo labels a second stage trains on')
    parser.add_argument('--threads', type=int, default=2, help='torch threads per process')
    parser.add_argument('--data-options', nargs='*', default=[],
                        help='extra --cfg-options for every step (e.g. another data root); '
                        'val_/test_dataloader ones are left out of the AffinityNet training')
    parser.add_argument('--no-select', action='store_true',
                        help='use the config\'s alphas and beta instead of choosing them on '
                        'the selection images')
    return parser.parse_args()


def schedule(iters: int) -> list:
    """cfg-options that shorten or lengthen the quick-start schedule to ``iters``."""
    warmup = min(20, max(1, iters // 10))
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}', f'param_scheduler.0.end={warmup}',
            f'param_scheduler.1.begin={warmup}', f'param_scheduler.1.end={iters}',
            f'default_hooks.logger.interval={max(1, min(25, iters // 4))}']


def cpu_seconds() -> float:
    """CPU time (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(step: str, args: list, env: dict) -> None:
    print(f'\n=== {step}\n$ python {" ".join(args)}', flush=True)
    start, cpu = time.time(), cpu_seconds()
    proc = subprocess.run([sys.executable] + args, cwd=REPO, env=env)
    print(f'=== {step}: {time.time() - start:.0f} s wall, {cpu_seconds() - cpu:.0f} s CPU '
          f'(exit code {proc.returncode})', flush=True)
    if proc.returncode != 0:
        sys.exit(f'wsss_demo: step "{step}" failed with exit code {proc.returncode}')


def split_options(num_images: int) -> Tuple[List[str], List[str]]:
    """cfg-options of the pseudo-label config for the two image sets of the demo.

    Args:
        num_images (int): Size of the selection set.

    Returns:
        tuple[list, list]: The selection set (the first ``num_images`` training images, whose
        masks choose the alphas and beta) and the evaluation set (all validation images).
    """
    if num_images < 1:
        raise ValueError(f'--num-images must be at least 1, got {num_images}')
    selection = [f'test_dataloader.dataset.indices={num_images}']
    validation = ['test_dataloader.dataset.data_prefix.img_path=leftImg8bit/val',
                  'test_dataloader.dataset.data_prefix.seg_map_path=gtFine/val',
                  'test_dataloader.dataset.indices=None']
    return selection, validation


def selected(path: str) -> dict:
    """The values chosen by a ``tools/select_psa_params.py`` run (its JSON result)."""
    with open(path, encoding='utf-8') as f:
        return json.load(f)['selected']


def main() -> None:
    args = parse_args()
    work = osp.abspath(args.work_dir)
    out = osp.join(work, 'pseudo_labels')  # training images (CAM cache, affinity labels)
    out_val = osp.join(work, 'pseudo_labels_val')  # the held-out validation images
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    # idle OpenMP threads sleep instead of spinning: on a busy CPU spinning threads slow torch
    # down several times
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    data = list(args.data_options)
    threads = [f'test_cfg.num_threads={args.threads}']
    selection, validation = split_options(args.num_images)
    pl_cfg = CFG.format('pseudo-labels')
    start, cpu = time.time(), cpu_seconds()

    cam_ckpt = osp.join(work, 'cam', f'iter_{args.cam_iters}.pth')
    if not osp.isfile(cam_ckpt):
        run('1/4 train the CAM classifier',
            ['tools/train.py', CFG.format('cam'), '--work-dir', osp.join(work, 'cam'),
             '--cfg-options'] + schedule(args.cam_iters) + data, env)

    alphas = []
    if not args.no_select:
        result = osp.join(out, 'selection_affinity.json')
        run('2/4 choose low / high alpha on the selection images',
            ['tools/select_psa_params.py', pl_cfg, '--sweep', 'affinity', '--cam-checkpoint',
             cam_ckpt, '--out', out, '--result', result, '--work-dir',
             osp.join(work, 'runner'), '--cfg-options'] + selection + threads + data, env)
        alphas = [f'test_cfg.{k}={v}' for k, v in selected(result).items()]
    run('2/4 affinity labels (CAM + dCRF)',
        ['tools/make_pseudo_labels.py', pl_cfg, '--cam-checkpoint', cam_ckpt,
         '--out', out, '--affinity-labels', '--work-dir', osp.join(work, 'runner'),
         '--cfg-options', 'test_dataloader.dataset.indices=None'] + alphas + threads + data,
        env)

    aff_ckpt = osp.join(work, 'affinitynet', f'iter_{args.aff_iters}.pth')
    if not osp.isfile(aff_ckpt):
        run('3/4 train AffinityNet',
            ['tools/train.py', CFG.format('affinitynet'), '--work-dir',
             osp.join(work, 'affinitynet'), '--cfg-options'] + schedule(args.aff_iters) + [
                 'train_dataloader.dataset.data_prefix.seg_map_path=' +
                 osp.join(out, 'affinity_labels'),
                 'model.backbone.init_cfg.type=Pretrained',
                 f'model.backbone.init_cfg.checkpoint={cam_ckpt}',
                 'model.backbone.init_cfg.prefix=backbone.'] +
            [o for o in data if not o.startswith(('val_dataloader.', 'test_dataloader.'))], env)

    walk = []
    if not args.no_select:
        result = osp.join(out, 'selection_walk.json')
        run('4/4 choose the walk alpha and beta on the selection images',
            ['tools/select_psa_params.py', pl_cfg, '--sweep', 'walk', '--cam-checkpoint',
             cam_ckpt, '--aff-checkpoint', aff_ckpt, '--out', out, '--result', result,
             '--work-dir', osp.join(work, 'runner'), '--cfg-options'] + selection + threads +
            data, env)
        walk = [f'test_cfg.{k}={v}' for k, v in selected(result).items()]
    run('4/4 pseudo labels of the selection images (CAM -> random walk -> dCRF)',
        ['tools/make_pseudo_labels.py', pl_cfg, '--cam-checkpoint', cam_ckpt,
         '--aff-checkpoint', aff_ckpt, '--out', out, '--work-dir', osp.join(work, 'runner'),
         '--cfg-options'] + selection + alphas + walk + threads + data, env)
    run('4/4 pseudo labels of the validation images and their accuracy (held out)',
        ['tools/make_pseudo_labels.py', pl_cfg, '--cam-checkpoint', cam_ckpt,
         '--aff-checkpoint', aff_ckpt, '--out', out_val, '--work-dir',
         osp.join(work, 'runner'), '--cfg-options'] + validation + alphas + walk + threads +
        data, env)

    print(f'\nPSA demo finished in {(time.time() - start) / 60:.1f} min wall, '
          f'{(cpu_seconds() - cpu) / 60:.1f} min CPU; outputs in {out} and {out_val}\n')
    values = ', '.join(o.split('.', 1)[1] for o in alphas + walk) or "the config's values"
    how = 'chosen on the selection images' if not args.no_select else 'not re-chosen'
    print(f'Settings: {values} ({how}). Held-out validation images:')
    with open(osp.join(out_val, 'table1.md'), encoding='utf-8') as f:
        print(f.read())
    with open(osp.join(out_val, 'metrics.json'), encoding='utf-8') as f:
        metrics = json.load(f)
    if metrics.get('CAM + RW', 0) <= metrics.get('CAM', 0):
        print('note: the random walk did not improve on the CAMs in this run')


if __name__ == '__main__':
    main()
