# Copyright (c) mmaffseg contributors. All rights reserved.
"""Random walk: mmaffseg vs the PSA reference's dense walk, and against its memory-traffic floor.

    python tools/analysis_tools/benchmark.py random-walk [--threads 1] [--repeat 3]
        [--channels 21] [--device cpu] [--skip-large] [--large-size 1024 2048]
        [--large-stride 8] [--large-channels 21]

Part 1, same argmax: a 375 x 500 image at stride 8 (grid 47 x 63, N = 2961), PSA's whole step
(background, pooling, walk, upsampling) with the reference's dense walk (dense ``N x N``
transition matrix squared ``logt`` times, as ``infer_aff.py`` does) and with mmaffseg's walk,
each case in its own fresh process: median wall and process-CPU time, peak memory of the walk
alone and of the whole step (:mod:`benchmarks.profiling`), the speed-up of CPU times and the
argmax agreement. Inputs are a synthetic scene (ellipses; CAMs that cover only the object
centres; affinities from noisy per-region features), so the walk has work to do; the mIoU of the
CAM and walk labels against the scene (mmseg's ``IoUMetric``) is a sanity check.

Part 2, the physical limit: the walk alone on a 1024 x 2048 image at stride 8 (grid 128 x 256,
N = 32768) with 21 random score channels and 256 steps, in a fresh process. Its memory-traffic
floor is the bytes a step cannot avoid (read the ``2K + 1`` row-stochastic weights of every
pixel, read the scores, write the new scores; plus reading the affinities once) divided by the
bandwidth of a 1 GiB ``copy_`` timed in the same process (bytes read + written per second). The
tool prints the floor, the bandwidth, the walk's time and the ratio, best time against best
time (the copy and the matmul of the floors are timed best of 3; the ratio of the median walk
is printed too), with the kernel ``auto`` picks (the compiled C++ kernel where it builds) and
with the PyTorch kernels (``embedding_bag``) as a second row (part 1 has that row too); the
compiled kernel's own traffic, working set and the CPU's last-level cache (a working set that
fits in it is not streamed from memory each step); the compute floor (the walk's multiply-adds
at the rate of a large float32 matmul in the same process); the previous CSR kernel
(``T @ x``) as a before row; and the bilinear upsampling of the walked scores in the returned
layout vs the channels-last layout the walk used to return.
"""
import argparse
import functools
import glob
import time
import warnings
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.evaluation.metrics import IoUMetric

from mmaffseg.cli import positive_int, report_error
from mmaffseg.ops.affinity_pairs import pairwise_affinity
from mmaffseg.ops.neighbour_offsets import neighbour_offsets
from mmaffseg.ops.psa_defaults import PSA_DEFAULTS
from mmaffseg.wsss.cam import add_background
from mmaffseg.wsss.random_walk import (
    csr_transition,
    random_walk,
    random_walk_cams,
    transition_rows,
)
from mmaffseg.wsss.random_walk_kernel import compiled_library

from .dense_random_walk import dense_random_walk
from .profiling import call_in_fresh_process, format_table, measure, peak_memory

SHARED = dict(threads=1, repeat=3, device='cpu')
SHARED_HELP = dict(threads='torch CPU threads (all cases)')


def transition_matrix(aff: torch.Tensor, size: Tuple[int, int],
                      radius: int = PSA_DEFAULTS.radius,
                      beta: float = PSA_DEFAULTS.rw_beta) -> torch.Tensor:
    """Sparse row-stochastic ``T = D^-1 A^beta``, block diagonal over the batch: the CSR form of
    :func:`~mmaffseg.wsss.random_walk.transition_rows` (its slots with a partner).

    Args:
        aff (Tensor): ``(B, K, P)`` pair affinities on an ``H x W`` grid.
        size (tuple[int, int]): The grid ``(H, W)``.
        radius (int): Pair radius. Default: PSA's ``radius``.
        beta (float): Power applied to the affinities. Default: PSA's ``rw_beta``.

    Returns:
        Tensor: Sparse CSR ``(B * H * W, B * H * W)`` on the device of ``aff``.
    """
    return csr_transition(*transition_rows(aff, size, radius, beta))


def csr_random_walk(scores: torch.Tensor, aff: torch.Tensor, radius: int = PSA_DEFAULTS.radius,
                    beta: float = PSA_DEFAULTS.rw_beta,
                    logt: int = PSA_DEFAULTS.rw_logt) -> torch.Tensor:
    """mmaffseg's previous walk, kept as a before row: ``2 ** logt`` CSR products ``T @ x``."""
    batch, channels, height, width = scores.shape
    trans = transition_matrix(aff.to(scores.dtype), (height, width), radius, beta)
    x = scores.flatten(2).transpose(1, 2).reshape(-1, channels)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        for _ in range(2**logt):
            x = trans @ x
    return x.view(batch, height, width, channels).permute(0, 3, 1, 2)


WALKS = dict(mmaffseg=random_walk, dense=dense_random_walk, csr=csr_random_walk,
             torch=functools.partial(random_walk, kernel='torch'))


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


def miou(pred: np.ndarray, truth: np.ndarray, num_classes: int = 4) -> float:
    """mIoU of a label map against the scene truth, with mmseg's ``IoUMetric``."""
    areas = IoUMetric.intersect_and_union(torch.from_numpy(pred).long(),
                                          torch.from_numpy(truth).long(), num_classes, 255)
    metrics = IoUMetric.total_area_to_metrics(*areas, ['mIoU'])
    return float(np.nanmean(metrics['IoU']))


def walk_case(method: str, height: int, width: int, stride: int, channels: int, threads: int,
              repeat: int, device: str, all_live: bool = False) -> dict:
    """PSA's walk step on the synthetic scene in this (fresh) process: time, memory, labels.

    With ``all_live`` the CAMs of the absent classes get a little noise instead of zeros, so
    that every channel is walked (the walk skips channels that are zero everywhere).
    """
    torch.set_num_threads(threads)
    cams, aff = synthetic_scene(height, width, stride, channels)[:2]
    if all_live:
        gen = torch.Generator().manual_seed(1)
        cams[:, 3:] = 0.01 * torch.rand(cams[:, 3:].shape, generator=gen)
    cams, aff = cams.to(device), aff.to(device)
    padded = F.pad(add_background(cams, 16), (0, -width % stride, 0, -height % stride))
    pooled = F.avg_pool2d(padded, stride, stride)
    del padded

    def step():
        return random_walk_cams(cams, aff, stride=stride, walk=WALKS[method])

    walk_mem = peak_memory(lambda: WALKS[method](pooled, aff), device)[1]
    scores, step_mem = peak_memory(step, device)
    labels = scores.argmax(1)[0].cpu().numpy().astype(np.uint8)
    del scores
    timing = measure(step, warmup=0, repeat=repeat, device=device, memory=False)
    # the walk alone (pooled scores in, walked scores out): what the step's other work
    # (background, pooling, upsampling at image size) does not dilute
    walk_only = measure(lambda: WALKS[method](pooled, aff), warmup=0, repeat=repeat,
                        device=device, memory=False)
    return dict(timing, walk_cpu_s=walk_only['cpu_s'], walk_wall_s=walk_only['wall_s'],
                walk_mb=walk_mem['work_mb'], step_mb=step_mem['work_mb'], labels=labels)


def best_seconds(timing: dict, device: str) -> float:
    """The best time of a :func:`measure` result: process CPU time on one CPU thread (what stays
    meaningful on a loaded machine, and the clock the walk's ratio uses), else wall time."""
    one_cpu = not str(device).startswith('cuda') and torch.get_num_threads() == 1
    return timing['cpu_min_s' if one_cpu else 'wall_min_s']


def copy_bandwidth(device: str, gib: float = 1.0, repeat: int = 3) -> float:
    """Bytes read + written per second by a ``gib`` GiB ``copy_`` (best of ``repeat``)."""
    src = torch.ones(int(gib * 2**28), device=device)
    dst = torch.empty_like(src)
    timing = measure(lambda: dst.copy_(src), warmup=1, repeat=repeat, device=device,
                     memory=False)
    return 2 * src.numel() * 4 / best_seconds(timing, device)


def matmul_flops(device: str, size: int = 2048, repeat: int = 3) -> float:
    """float32 multiply-adds x 2 per second of a ``size`` square matmul (best of ``repeat``)."""
    a = torch.rand(size, size, device=device)
    timing = measure(lambda: a @ a, warmup=1, repeat=repeat, device=device, memory=False)
    return 2 * size**3 / best_seconds(timing, device)


def last_level_cache_bytes() -> int:
    """Size of the largest CPU cache (Linux sysfs), 0 where unknown."""
    sizes = []
    for index in glob.glob('/sys/devices/system/cpu/cpu0/cache/index*/size'):
        with open(index) as f:
            text = f.read().strip()
        unit = {'K': 2**10, 'M': 2**20, 'G': 2**30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip('KMG')) * unit)
    return max(sizes, default=0)


def floor_case(height: int, width: int, stride: int, channels: int, threads: int, repeat: int,
               device: str, radius: int = PSA_DEFAULTS.radius,
               logt: int = PSA_DEFAULTS.rw_logt, copy_gib: float = 1.0,
               matmul_size: int = 2048) -> dict:
    """The walk alone at a large size vs its memory-traffic and compute floors (fresh process)."""
    torch.set_num_threads(threads)
    grid = (-(-height // stride), -(-width // stride))
    n = grid[0] * grid[1]
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(1, channels, *grid, generator=gen).to(device)
    aff = synthetic_scene(height, width, stride, 4)[1].to(device)
    slots, steps = 2 * len(neighbour_offsets(radius)) + 1, 2**logt
    res = dict(grid=grid, n=n, slots=slots, steps=steps,
               bandwidth=copy_bandwidth(device, copy_gib),
               flops=matmul_flops(device, matmul_size))
    res['floor_bytes'] = steps * n * 4 * (slots + 2 * channels) + aff.numel() * 4
    # the compiled kernel: K pair weights + 1 / d per pixel, scores padded to a multiple of 4,
    # on the grid with a zero border of radius - 1 pixels
    halo, padded_c = radius - 1, -(-channels // 4) * 4
    n_border = (grid[0] + 2 * halo) * (grid[1] + 2 * halo)
    res['kernel_bytes'] = steps * n * 4 * ((slots - 1) // 2 + 1 + 2 * padded_c)
    res['kernel_working_set'] = n_border * 4 * ((slots - 1) // 2 + 1 + 2 * padded_c)
    res['llc_bytes'] = last_level_cache_bytes()
    res['macs'] = steps * n * slots * channels
    res['walk'] = measure(lambda: random_walk(scores, aff, radius, logt=logt), warmup=1,
                          repeat=repeat, device=device)
    res['compiled'] = str(device) == 'cpu' and compiled_library() is not None
    res['walk_torch'] = measure(lambda: random_walk(scores, aff, radius, logt=logt, kernel='torch'),
                                warmup=1, repeat=repeat, device=device, memory=False)
    res['csr'] = measure(lambda: csr_random_walk(scores, aff, radius, logt=logt), warmup=0,
                         repeat=1, device=device, memory=False)
    full = (grid[0] * stride, grid[1] * stride)
    for c in sorted({channels, 4}):
        walked = random_walk(scores[:, :c], aff, radius, logt=0)  # the walk's output layout
        for layout, x in (('returned', walked), ('contiguous', walked.contiguous())):
            def upsample_argmax(x=x):
                return F.interpolate(x, full, mode='bilinear', align_corners=False).argmax(1)
            res[f'upsample_{c}_{layout}'] = measure(upsample_argmax, warmup=1, repeat=repeat,
                                                    device=device, memory=False)
    return res


def load() -> str:
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--channels', type=positive_int, default=21,
                        help='score channels walked at 375x500 (the reference walks all 21)')
    parser.add_argument('--skip-large', action='store_true', help='skip part 2 (the floor)')
    parser.add_argument('--large-size', type=positive_int, nargs=2, default=(1024, 2048),
                        metavar=('H', 'W'), help='image size of part 2')
    parser.add_argument('--large-stride', type=positive_int, default=8,
                        help='feature stride of part 2')
    parser.add_argument('--large-channels', type=positive_int, default=21,
                        help='score channels of part 2')


def run(args: argparse.Namespace) -> int:
    if args.channels < 4:
        return report_error('--channels: the synthetic scene has 3 objects and a background, '
                            f'so at least 4 channels, got {args.channels}')

    h, w, s = 375, 500, 8
    n = -(-h // s) * -(-w // s)
    print(f'== {h}x{w} image, stride {s}: N = {n}, {args.channels} channels, 256 steps, '
          f'{args.threads} thread(s), device {args.device}; load average {load()}')
    res = {m: call_in_fresh_process(walk_case, m, h, w, s, args.channels, args.threads,
                                    args.repeat, args.device) for m in ('dense', 'mmaffseg')}
    res['mmaffseg, all channels walked'] = call_in_fresh_process(
        walk_case, 'mmaffseg', h, w, s, args.channels, args.threads, args.repeat, args.device,
        True)
    res['mmaffseg, PyTorch kernels, all channels walked'] = call_in_fresh_process(
        walk_case, 'torch', h, w, s, args.channels, args.threads, args.repeat, args.device, True)
    res['before: CSR T @ x, all channels walked'] = call_in_fresh_process(
        walk_case, 'csr', h, w, s, args.channels, args.threads, args.repeat, args.device, True)
    print(format_table(
        ['walk', 'step wall s', 'step CPU s', 'walk alone CPU s', 'walk peak MiB',
         'step peak MiB'],
        [[m, r['wall_s'], r['cpu_s'], r['walk_cpu_s'], r['walk_mb'], r['step_mb']]
         for m, r in res.items()]))
    dense, ours, live = res['dense'], res['mmaffseg'], res['mmaffseg, all channels walked']
    agree = (dense['labels'] == ours['labels']).mean()
    print(f'**speed-up vs the official dense walk, all {args.channels} channels walked: '
          f'{dense["cpu_s"] / live["cpu_s"]:.1f}x CPU time** '
          f'({dense["wall_s"] / live["wall_s"]:.1f}x wall; the dense walk does the same work '
          'whatever the values); the step is PSA\'s (background, pooling, walk, upsampling)')
    print(f'**the walk alone (pooled scores in, walked scores out), all {args.channels} channels: '
          f'{dense["walk_cpu_s"] / live["walk_cpu_s"]:.1f}x CPU time** '
          f'({dense["walk_wall_s"] / live["walk_wall_s"]:.1f}x wall)')
    torch_kernels = res['mmaffseg, PyTorch kernels, all channels walked']
    print(f'PyTorch kernels (embedding_bag), all channels walked: '
          f'{dense["cpu_s"] / torch_kernels["cpu_s"]:.1f}x CPU time; the compiled kernel is '
          f'{torch_kernels["cpu_s"] / live["cpu_s"]:.2f}x faster')
    before = res['before: CSR T @ x, all channels walked']
    print(f'before (CSR T @ x), all channels walked: {dense["cpu_s"] / before["cpu_s"]:.1f}x CPU '
          f'time ({dense["wall_s"] / before["wall_s"]:.1f}x wall)')
    print(f'speed-up on the scene as given ({args.channels - 4} absent-class channels zero, not '
          f'walked): {dense["cpu_s"] / ours["cpu_s"]:.1f}x CPU time '
          f'({dense["wall_s"] / ours["wall_s"]:.1f}x wall); walk memory '
          f'{dense["walk_mb"] / max(ours["walk_mb"], 1e-3):.1f}x less; argmax agreement '
          f'{100 * agree:.4f}% of {h * w} pixels')
    cams, _, truth = synthetic_scene(h, w, s, args.channels)
    cam_labels = add_background(cams, 16).argmax(1)[0].numpy()
    print(f'sanity (scene truth): mIoU CAM {miou(cam_labels, truth.numpy()):.3f} -> walk '
          f'mmaffseg {miou(ours["labels"], truth.numpy()):.3f}, dense '
          f'{miou(dense["labels"], truth.numpy()):.3f}')
    if args.skip_large:
        return 0

    (h, w), s, c = args.large_size, args.large_stride, args.large_channels
    start = time.perf_counter()
    r = call_in_fresh_process(floor_case, h, w, s, c, args.threads, args.repeat, args.device)
    print(f'\n== {h}x{w} image, stride {s}: grid {r["grid"][0]}x{r["grid"][1]} (N = {r["n"]}), '
          f'{c} channels, {r["steps"]} steps, {r["slots"]} slots per row, {args.threads} '
          f'thread(s); load average {load()} ({time.perf_counter() - start:.0f} s)')
    floor_s = r['floor_bytes'] / r['bandwidth']
    compute_s = 2 * r['macs'] / r['flops']
    walk = r['walk']
    print(format_table(['quantity', 'value'], [
        ['copy bandwidth (1 GiB copy_, read + write, best CPU time), GB/s', r['bandwidth'] / 1e9],
        ['memory-traffic floor: bytes (weights + scores in/out per step), GB',
         r['floor_bytes'] / 1e9],
        ['memory-traffic floor, s', floor_s],
        ['traffic of the compiled kernel (34 pair weights + 1 / d + scores in/out, channels '
         'padded to 4k), GB', r['kernel_bytes'] / 1e9],
        ['its time at the copy bandwidth, s', r['kernel_bytes'] / r['bandwidth']],
        ['working set of the compiled kernel (2 score buffers + weights), MB',
         r['kernel_working_set'] / 1e6],
        ['last-level cache of this CPU, MB',
         r['llc_bytes'] / 1e6 if r['llc_bytes'] else 'unknown'],
        ['matmul rate (float32 2048^2, best CPU time), GFLOP/s', r['flops'] / 1e9],
        ['compute floor (multiply-adds at the matmul rate), s', compute_s],
        ['walk kernel (auto)', 'compiled C++' if r['compiled'] else 'PyTorch'],
        ['walk (build T + steps), wall s', walk['wall_s']],
        ['walk, CPU s (median)', walk['cpu_s']],
        ['walk, best CPU s', walk['cpu_min_s']],
        ['**ratio walk / memory floor (best CPU time, as the floor\'s copy)**',
         walk['cpu_min_s'] / floor_s],
        ['ratio walk / memory floor (median CPU time)', walk['cpu_s'] / floor_s],
        ['ratio walk / memory floor (median wall)', walk['wall_s'] / floor_s],
        ['ratio walk / compute floor (best CPU time, as the floor\'s matmul)',
         walk['cpu_min_s'] / compute_s],
        ['ratio walk / compute floor (median CPU time)', walk['cpu_s'] / compute_s],
        ['walk peak memory above the inputs, MiB', walk['work_mb']],
        ['walk with the PyTorch kernels (embedding_bag), CPU s', r['walk_torch']['cpu_s']],
        ['ratio PyTorch-kernel walk / memory floor (CPU time)',
         r['walk_torch']['cpu_s'] / floor_s],
        ['speed-up of the compiled kernel vs the PyTorch kernels (CPU time)',
         r['walk_torch']['cpu_s'] / walk['cpu_s']],
        ['before: CSR T @ x walk, CPU s (1 run)', r['csr']['cpu_s']],
        ['speed-up vs the CSR walk (CPU time)', r['csr']['cpu_s'] / walk['cpu_s']],
    ] + [[f'upsample x {s} + argmax of {c} walked channels, {layout} layout, CPU s',
           r[f'upsample_{c}_{layout}']['cpu_s']]
         for c in sorted({c, 4}) for layout in ('returned', 'contiguous')],
        float_format='.3f'))
    gb = r['n'] * r['n'] * 4 / 1e9
    print(f'dense would need N x N float32 = {gb:.1f} GB per matrix; the reference holds the '
          f'affinity, the transition matrix and a matmul product at once: ~{3 * gb:.0f} GB')
    return 0
