# Copyright (c) mmaffseg contributors. All rights reserved.
"""Throughput of mmaffseg's DenseCRF: serial vs a pool of W workers, in one run.

    python tools/analysis_tools/benchmark.py dense-crf [--size 375 500] [--labels 3 21]
        [--images 8] [--batches 2] [--workers auto] [--iterations 10]
        [--start-method fork|spawn|forkserver]

Per label count: random probabilities and images of ``--size``; ``--batches`` timed batches of
``--images`` images, the serial and the pooled batches alternating so that a changing machine
load hits both alike. The pool is started by an untimed first batch (its time is printed as
"pool start + 1st batch") and reused, as :meth:`DenseCRF.batch` reuses it across the batches of
a run. Printed per W: images/s from the median wall time of a batch, the speed-up over serial
and its ratio to W (the goal: >= 0.8 on a quiet machine with W <= the cores), and the CPU time
per image of the parent plus its worker processes (:func:`benchmarks.profiling.measure`
with ``children=True``): pooled / serial CPU is the pool's overhead (pickling, IPC), which
stays meaningful on a loaded machine where wall time does not. The load average before and
after is printed: on a machine with more runnable processes than cores the wall-time speed-up
is capped by the share of the cores this run gets. Every pooled result is checked to be
identical to the serial one. Last, the pool's own cost per batch (tiny images): the kept pool
against a pool started and shut down for every batch.
"""
import argparse
import multiprocessing
import os
import time
from functools import partial

import numpy as np

from mmaffseg.cli import positive_int, report_error
from mmaffseg.postprocessing import DenseCRF
from mmaffseg.postprocessing.worker_pool import available_cpus

from .profiling import format_table, measure

SHARED = dict(size=[375, 500])
SHARED_HELP = dict(size='image size')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--labels', type=positive_int, nargs='+', default=[3, 21])
    parser.add_argument('--images', type=positive_int, default=None,
                        help='images per batch (default: 2 x the largest W)')
    parser.add_argument('--batches', type=positive_int, default=2, help='timed batches (median)')
    parser.add_argument('--workers', nargs='+', default=['auto'],
                        help="pool sizes W to compare with serial ('auto': one per core)")
    parser.add_argument('--iterations', type=positive_int, default=10)
    parser.add_argument('--start-method', default=None,
                        choices=multiprocessing.get_all_start_methods(),
                        help='multiprocessing start method of the pool (default: platform)')


def random_batch(num_images: int, num_labels: int, h: int, w: int, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    probs = [rng.dirichlet(np.ones(num_labels), (h, w)).transpose(2, 0, 1).astype(np.float32)
             for _ in range(num_images)]
    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(num_images)]
    return probs, imgs


def _median(runs: list, key: str) -> float:
    values = sorted(r[key] for r in runs)
    return values[len(values) // 2]


def benchmark(args: argparse.Namespace, num_labels: int) -> list:
    """Table rows of the serial run and of each pool size, for ``num_labels`` labels."""
    n = args.images
    probs, imgs = random_batch(n, num_labels, *args.size)
    serial = DenseCRF(iterations=args.iterations, workers=0)
    serial.batch(probs[:1], imgs[:1])  # warm-up (imports)
    crfs = {'serial': serial}
    starts, first = {}, {}
    for size in args.workers:
        crfs[size] = DenseCRF(iterations=args.iterations, workers=size,
                              start_method=args.start_method)
        # untimed in the table: starts the pool, which the timed batches then reuse
        start = time.perf_counter()
        first[size] = crfs[size].batch(probs, imgs)
        starts[size] = time.perf_counter() - start
    reference = serial.batch(probs, imgs)
    for size in args.workers:
        if not all(np.array_equal(a, b) for a, b in zip(reference, first[size])):
            raise AssertionError(f'{size} workers: the marginals differ from the serial run')
    runs = {name: [] for name in crfs}
    for _ in range(args.batches):  # alternate, so that load changes hit every variant alike
        for name, crf in crfs.items():
            runs[name].append(measure(partial(crf.batch, probs, imgs), 0, 1, memory=False,
                                      children=True))
    for size in args.workers:
        crfs[size].close()
    serial_wall, serial_cpu = _median(runs['serial'], 'wall_s'), _median(runs['serial'], 'cpu_s')
    rows = [[num_labels, 'serial', n / serial_wall, 1.0, '-', serial_cpu / n, 1.0, '-', 'yes']]
    for size in args.workers:
        wall, cpu = _median(runs[size], 'wall_s'), _median(runs[size], 'cpu_s')
        rows.append([num_labels, f'{size} workers', n / wall, serial_wall / wall,
                     serial_wall / wall / size, cpu / n, cpu / serial_cpu, starts[size], 'yes'])
    return rows


def pool_overhead(size: int, start_method, repeat: int = 5) -> tuple:
    """Wall seconds of a batch of ``size`` 8x8 images (CRF work ~0): with the kept pool, and
    with a pool started and shut down for the batch (how ``DenseCRF.batch`` worked before)."""
    probs, imgs = random_batch(size, 2, 8, 8)
    with DenseCRF(workers=size, start_method=start_method) as crf:
        kept = measure(partial(crf.batch, probs, imgs), 1, repeat, memory=False)['wall_s']

    def fresh_pool_batch():
        with DenseCRF(workers=size, start_method=start_method) as crf:
            crf.batch(probs, imgs)

    fresh = measure(fresh_pool_batch, 0, repeat, memory=False)['wall_s']
    return kept, fresh


def run(args: argparse.Namespace) -> int:
    try:
        args.workers = [available_cpus() if w == 'auto' else int(w) for w in args.workers]
    except ValueError:
        return report_error(f"--workers: expected pool sizes or 'auto', got "
                            f"{' '.join(args.workers)}")
    if min(args.workers) < 2:
        return report_error(f'--workers: a pool has at least 2 workers (1 is the serial run), '
                            f'got {min(args.workers)}')
    args.images = args.images or 2 * max(args.workers)
    h, w = args.size
    print(f'{args.images} images of {h}x{w} per batch, {args.iterations} iterations, median of '
          f'{args.batches} batches; {available_cpus()} cores available, load average '
          f'{os.getloadavg()[0]:.2f} (1 min) at the start')
    rows = [row for num_labels in args.labels for row in benchmark(args, num_labels)]
    print(format_table(['labels', 'run', 'images/s', 'speed-up', 'speed-up / W',
                        'CPU s/img (all processes)', 'CPU pooled / serial',
                        'pool start + 1st batch (s)', 'identical to serial'], rows))
    for size in args.workers:
        kept, fresh = pool_overhead(size, args.start_method)
        print(f'pool overhead per batch of {size} tiny images: {kept * 1e3:.1f} ms with the kept '
              f'pool, {fresh * 1e3:.0f} ms with a pool started per batch')
    print(f'load average at the end {os.getloadavg()[0]:.2f} (1 min) on {available_cpus()} '
          f'cores; wall-time figures are meaningful only with a load below the core count')
    return 0
