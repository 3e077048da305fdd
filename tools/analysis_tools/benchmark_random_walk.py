# Copyright (c) mmaffseg contributors. All rights reserved.
"""Sparse random walk (mmaffseg) vs the dense walk of the PSA reference: time, memory, argmax.

    python tools/analysis_tools/benchmark_random_walk.py [--threads 1] [--repeat 3]
        [--channels 21] [--large-channels 4] [--device cpu] [--skip-large]

Part 1: a 375 x 500 image at stride 8 (grid 47 x 63, N = 2961), both walks, each in its own
fresh process: median time, peak memory above the process's resident memory before the step
(Linux VmHWM, reset before each measurement; CUDA: peak allocated) for the walk alone and for
the whole step, and the argmax agreement of the two pseudo labels.
Part 2: the sparse walk alone on a 1024 x 2048 image at stride 4 (N = 131072), with the size the
dense matrices would need. Inputs are a synthetic scene (ellipses; CAMs that cover only the
object centres; affinities from noisy per-region features), so the walk has work to do; the
mIoU of CAM and walk labels against the scene is printed as a sanity check.
"""
import argparse
import multiprocessing
import re

import numpy as np
import torch
import torch.nn.functional as F

from mmaffseg.ops.affinity_pairs import pairwise_affinity
from mmaffseg.utils import time_fn
from mmaffseg.wsss.cam import add_background
from mmaffseg.wsss.dense_random_walk import dense_random_walk
from mmaffseg.wsss.random_walk import random_walk, random_walk_cams

WALKS = dict(sparse=random_walk, dense=dense_random_walk)


def synthetic_scene(height: int, width: int, stride: int, channels: int, seed: int = 0):
    """A scene of 3 ellipses on background.

    Returns:
        tuple: CAMs ``(1, channels - 1, H, W)`` (peaked at the object centres, weak near their
        boundaries, the remaining channels zero), affinities on the stride grid (from noisy
        one-hot region features) and the true region map ``(H, W)`` (0 background, k + 1).
    """
    gen = torch.Generator().manual_seed(seed)
    grid_h, grid_w = -(-height // stride), -(-width // stride)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width),
                            indexing='ij')
    region = torch.zeros(height, width, dtype=torch.long)
    cams = torch.zeros(1, channels - 1, height, width)
    for k, (cy, cx, ry, rx) in enumerate([(.35, .3, .22, .18), (.6, .7, .25, .2),
                                          (.8, .25, .12, .2)]):
        dist = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2
        region[dist < 1] = k + 1
        cams[0, k] = torch.exp(-4 * dist)
    grid = region[stride // 2::stride, stride // 2::stride]  # block centres
    grid = F.pad(grid, (0, grid_w - grid.shape[1], 0, grid_h - grid.shape[0]))
    feat = torch.cat([F.one_hot(grid, 4).permute(2, 0, 1) * 10., torch.zeros(12, grid_h, grid_w)])
    feat = feat + 0.1 * torch.randn(16, grid_h, grid_w, generator=gen)
    return cams, pairwise_affinity(feat[None]), region


def miou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean IoU over the classes present in ``truth``."""
    return float(np.mean([((pred == c) & (truth == c)).sum() / ((pred == c) | (truth == c)).sum()
                          for c in np.unique(truth)]))


def rss_bytes(field: str = 'VmRSS') -> int:
    """Resident memory of this process now (VmRSS) or at its peak (VmHWM), in bytes."""
    with open('/proc/self/status') as f:
        return int(re.search(field + r':\s+(\d+)', f.read()).group(1)) * 1024


def reset_peak_rss() -> None:
    """Restart the VmHWM peak from the current RSS (Linux >= 4.0)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def measure(method: str, height: int, width: int, stride: int, channels: int, threads: int,
            repeat: int, device: str) -> dict:
    """Run one walk in this (fresh) process: time, peak memory (walk alone, whole) and labels."""
    torch.set_num_threads(threads)
    cams, aff = (t.to(device) for t in synthetic_scene(height, width, stride, channels)[:2])
    padded = F.pad(add_background(cams, 16), (0, -width % stride, 0, -height % stride))
    pooled = F.avg_pool2d(padded, stride, stride)
    del padded
    cuda = device.startswith('cuda')

    def peak_mib(fn):
        """Result of ``fn()`` and its peak memory above what was held before it, MiB."""
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            reset_peak_rss()
            base = rss_bytes()
        out = fn()
        peak = torch.cuda.max_memory_allocated() if cuda else rss_bytes('VmHWM')
        return out, (peak - base) / 2**20

    def run():
        return random_walk_cams(cams, aff, stride=stride, walk=WALKS[method])

    _, walk_mb = peak_mib(lambda: WALKS[method](pooled, aff))
    scores, peak_mb = peak_mib(run)
    labels = scores.argmax(1)[0].cpu().numpy().astype(np.uint8)
    del scores
    timing = time_fn(run, warmup=0, repeat=repeat)
    return dict(time=timing['median'], walk_mb=walk_mb, peak_mb=peak_mb, labels=labels)


def in_fresh_process(*args) -> dict:
    with multiprocessing.get_context('spawn').Pool(1) as pool:
        return pool.apply(measure, args)


def report(name: str, r: dict, repeat: int) -> None:
    print(f'{name:>6}: {r["time"]:.3f} s (median of {repeat}); peak memory above the inputs: '
          f'walk {r["walk_mb"]:.1f} MiB, whole step (bg, pool, walk, upsample) '
          f'{r["peak_mb"]:.1f} MiB')


def main() -> None:
    parser = argparse.ArgumentParser(description='Sparse vs dense random walk benchmark')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads (both walks)')
    parser.add_argument('--repeat', type=int, default=3, help='timed runs (median reported)')
    parser.add_argument('--channels', type=int, default=21,
                        help='score channels walked at 375x500 (the reference walks all 21)')
    parser.add_argument('--large-channels', type=int, default=4,
                        help='score channels at 1024x2048 (background + present classes)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--skip-large', action='store_true', help='skip the 1024x2048 run')
    args = parser.parse_args()
    if min(args.channels, args.large_channels) < 4:
        parser.error('the synthetic scene has 3 objects: use at least 4 channels')

    h, w, s = 375, 500, 8
    n = -(-h // s) * -(-w // s)
    print(f'== {h}x{w} image, stride {s}: N = {n}, {args.channels} channels, '
          f'{args.threads} thread(s), device {args.device}')
    res = {
        m: in_fresh_process(m, h, w, s, args.channels, args.threads, args.repeat, args.device)
        for m in ('dense', 'sparse')
    }
    for m, r in res.items():
        report(m, r, args.repeat)
    agree = (res['dense']['labels'] == res['sparse']['labels']).mean()
    print(f'speed-up {res["dense"]["time"] / res["sparse"]["time"]:.1f}x; walk memory '
          f'{res["dense"]["walk_mb"] / max(res["sparse"]["walk_mb"], 1e-3):.1f}x less; argmax '
          f'agreement {100 * agree:.4f}% of {h * w} pixels')
    cams, _, truth = synthetic_scene(h, w, s, args.channels)
    cam_labels = add_background(cams, 16).argmax(1)[0].numpy()
    print(f'sanity (scene truth): mIoU CAM {miou(cam_labels, truth.numpy()):.3f} -> walk sparse '
          f'{miou(res["sparse"]["labels"], truth.numpy()):.3f}, dense '
          f'{miou(res["dense"]["labels"], truth.numpy()):.3f}')

    if args.skip_large:
        return
    h, w, s = 1024, 2048, 4
    n = -(-h // s) * -(-w // s)
    print(f'== {h}x{w} image, stride {s}: N = {n}, {args.large_channels} channels (sparse only)')
    report('sparse', in_fresh_process('sparse', h, w, s, args.large_channels, args.threads,
                                      args.repeat, args.device), args.repeat)
    gb = n * n * 4 / 1e9
    print(f'dense would need N x N float32 = {gb:.1f} GB per matrix; the reference holds the '
          f'affinity, the transition matrix and a matmul product at once: ~{3 * gb:.0f} GB')


if __name__ == '__main__':
    main()
