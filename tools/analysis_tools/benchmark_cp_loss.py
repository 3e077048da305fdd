# Copyright (c) mmaffseg contributors. All rights reserved.
"""Context prior affinity loss: factorised (ours) vs materialised ideal affinity A = L L^T.

    python tools/analysis_tools/benchmark_cp_loss.py [--prior-sizes 64 96 128] [--batch 2]
        [--num-classes 19] [--threads 2] [--form official] [--max-gb auto]
        [--omp-wait-policy passive]

Each variant runs forward + backward once (after a warm-up call at prior size 8) in its own
subprocess, so its peak RSS (``ru_maxrss``) is its own. The subprocess loads the loss module
alone, with torch only (mmseg's registry is stubbed), so the process baseline is torch's
(~0.2 GB) as in a bare reference script. Inputs are identical in both:
``P = sigmoid(randn)`` (B, N, N) and Cityscapes-like labels on the prior grid (class blocks of
8 x 8 cells, 10 % of the blocks ignore = 255). The table gives the loss values, the gradient
difference (on 100k sampled
entries, relative to the largest gradient, and the relative difference of the gradient norms),
the fwd+bwd wall and CPU time, the peak RSS, the RSS growth over the process after imports
(``extra``; it includes P and its gradient, 2 * B * N^2 * 4 bytes, which no implementation can
avoid), ``work`` = extra minus those two (the loss's own working memory) and the ratios
ours / materialised. A materialised run whose peak, extrapolated from the
previous prior size, would exceed ``--max-gb`` is skipped.

On a shared, oversubscribed CPU, OpenMP threads that spin while waiting at the end of each
parallel region inflate the time of code with many medium-sized operations (ours: a few per
class and row block) far more than that of a few huge ones; ``--omp-wait-policy passive`` sets
``OMP_WAIT_POLICY=PASSIVE`` for both workers (``default`` leaves the environment alone).
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time
import types

import torch

VARIANTS = ('ours', 'materialised')
NUM_SAMPLES = 100_000


PACKAGE_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'mmaffseg')
LOSS_FILE = osp.join(PACKAGE_DIR, 'models', 'losses', 'context_prior_loss.py')


def _load_file(name: str, path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_loss_module() -> types.ModuleType:
    """``context_prior_loss.py`` and its helpers (``models/utils/precision.py`` and
    ``counting.py``) on their own: only torch in the process, mmaffseg's package ``__init__``
    and mmseg's registry stubbed."""

    class _Registry:

        def register_module(self, *args, **kwargs):
            return lambda cls: cls

    registry = types.ModuleType('mmseg.registry')
    registry.MODELS = _Registry()
    sys.modules.setdefault('mmseg', types.ModuleType('mmseg'))
    sys.modules['mmseg.registry'] = registry
    for name in ('mmaffseg', 'mmaffseg.models', 'mmaffseg.models.utils',
                 'mmaffseg.models.losses'):
        package = types.ModuleType(name)
        package.__path__ = []
        sys.modules.setdefault(name, package)
    for helper in ('precision', 'counting'):
        _load_file(f'mmaffseg.models.utils.{helper}',
                   osp.join(PACKAGE_DIR, 'models', 'utils', f'{helper}.py'))
    return _load_file('mmaffseg.models.losses.context_prior_loss', LOSS_FILE)


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident set size now, in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def make_inputs(prior_size: int, batch: int, num_classes: int, seed: int = 0):
    """P (B, N, N) probabilities (one allocation) and labels (B, N) on the prior grid."""
    g = torch.Generator().manual_seed(seed)
    n = prior_size * prior_size
    prior = torch.randn(batch, n, n, generator=g).sigmoid_()
    blocks = -(-prior_size // 8)
    coarse = torch.randint(0, num_classes, (batch, blocks, blocks), generator=g)
    coarse[torch.rand(batch, blocks, blocks, generator=g) < 0.1] = 255
    label = coarse.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, :prior_size, :prior_size]
    return prior, label.reshape(batch, n)


def run_variant(args: argparse.Namespace) -> dict:
    """Worker: one forward + backward of one variant; returns the measurements."""
    losses = load_loss_module()
    torch.set_num_threads(args.threads)
    fn = dict(ours=losses.context_prior_loss,
              materialised=losses.context_prior_loss_materialised)[args.variant]
    warm, warm_label = make_inputs(8, args.batch, args.num_classes)
    fn(warm.requires_grad_(), warm_label, form=args.form).backward()
    del warm, warm_label
    rss_start = current_rss_mb()
    prior, label = make_inputs(args.prior_size, args.batch, args.num_classes)
    prior.requires_grad_()
    start, cpu_start = time.perf_counter(), time.process_time()
    loss = fn(prior, label, form=args.form)
    loss.backward()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = peak_rss_mb()
    grad = prior.grad.flatten()
    idx = torch.randint(0, grad.numel(), (NUM_SAMPLES, ),
                        generator=torch.Generator().manual_seed(1))
    return dict(loss=float(loss.detach()), time_s=elapsed, cpu_s=cpu, peak_mb=peak,
                extra_mb=peak - rss_start, grad_norm=float(grad.double().norm()),
                grad_max=float(grad.abs().max()),
                grad_samples=grad[idx].tolist())


def spawn(args: argparse.Namespace, variant: str, prior_size: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', variant, '--prior-sizes',
           str(prior_size), '--batch', str(args.batch), '--num-classes', str(args.num_classes),
           '--threads', str(args.threads), '--form', args.form]
    env = dict(os.environ)
    if args.omp_wait_policy != 'default':
        env['OMP_WAIT_POLICY'] = args.omp_wait_policy.upper()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return dict(error=f'exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def available_gb() -> float:
    with open('/proc/meminfo') as f:
        info = {line.split(':')[0]: int(line.split()[1]) for line in f}
    return info['MemAvailable'] / 2**20


def work_mb(result: dict, args: argparse.Namespace, num_cells: int) -> float:
    """RSS growth minus P and its gradient (float32)."""
    return result['extra_mb'] - 2 * args.batch * num_cells**2 * 4 / 2**20


def compare(ours: dict, ref: dict, args: argparse.Namespace, num_cells: int) -> dict:
    a, b = torch.tensor(ours['grad_samples']), torch.tensor(ref['grad_samples'])
    return dict(
        work_ratio=work_mb(ours, args, num_cells) / work_mb(ref, args, num_cells),
        loss_rel=abs(ours['loss'] - ref['loss']) / abs(ref['loss']),
        grad_max_rel=float((a - b).abs().max()) / ref['grad_max'],
        grad_norm_rel=abs(ours['grad_norm'] - ref['grad_norm']) / ref['grad_norm'],
        time_ratio=ours['time_s'] / ref['time_s'],
        cpu_ratio=ours['cpu_s'] / ref['cpu_s'],
        peak_ratio=ours['peak_mb'] / ref['peak_mb'],
        extra_ratio=ours['extra_mb'] / ref['extra_mb'])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark the context prior affinity loss')
    parser.add_argument('--prior-sizes', type=int, nargs='+', default=[64, 96, 128])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--num-classes', type=int, default=19)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--form', default='official', choices=['official', 'paper'])
    parser.add_argument('--max-gb', type=float, default=None,
                        help='skip materialised runs expected to exceed this peak RSS '
                        '(default: 85%% of MemAvailable)')
    parser.add_argument('--omp-wait-policy', default='default', choices=['default', 'passive'],
                        help='OMP_WAIT_POLICY of the workers (see the module docstring)')
    parser.add_argument('--worker', choices=VARIANTS, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        args.variant, args.prior_size = args.worker, args.prior_sizes[0]
        print(json.dumps(run_variant(args)))
        return
    max_gb = args.max_gb or 0.85 * available_gb()
    print(f'B={args.batch}, {args.num_classes} classes, form={args.form}, '
          f'{args.threads} threads, OMP wait policy {args.omp_wait_policy}, forward + backward '
          f'on CPU; limit {max_gb:.1f} GB\n')
    header = (f'{"prior":>5} {"N":>6} {"variant":>12} {"loss":>10} {"wall s":>8} {"cpu s":>8} '
              f'{"peak GB":>8} {"extra GB":>8} {"work GB":>8}')
    print(header)
    print('-' * len(header))
    rows, last_ref = [], None
    for size in args.prior_sizes:
        n = size * size
        results = {'ours': spawn(args, 'ours', size)}
        expected_gb = None
        if last_ref is not None:
            prev_n, prev_peak = last_ref
            expected_gb = prev_peak / 1024 * (n / prev_n)**2
        if expected_gb is not None and expected_gb > max_gb:
            results['materialised'] = dict(error=f'skipped: ~{expected_gb:.1f} GB expected')
        else:
            results['materialised'] = spawn(args, 'materialised', size)
            if 'peak_mb' in results['materialised']:
                last_ref = (n, results['materialised']['peak_mb'])
        for variant, r in results.items():
            if 'error' in r:
                print(f'{size:>5} {n:>6} {variant:>12} {r["error"]}')
                continue
            print(f'{size:>5} {n:>6} {variant:>12} {r["loss"]:>10.6f} {r["time_s"]:>8.2f} '
                  f'{r["cpu_s"]:>8.2f} {r["peak_mb"] / 1024:>8.2f} {r["extra_mb"] / 1024:>8.2f} '
                  f'{work_mb(r, args, n) / 1024:>8.3f}')
        if all('error' not in r for r in results.values()):
            rows.append((size, compare(results['ours'], results['materialised'], args, n)))
    print('\nours / materialised')
    print(f'{"prior":>5} {"loss rel diff":>14} {"grad max diff":>14} {"grad norm diff":>15} '
          f'{"wall":>6} {"cpu":>6} {"peak":>6} {"extra":>6} {"work":>6}')
    for size, c in rows:
        print(f'{size:>5} {c["loss_rel"]:>14.2e} {c["grad_max_rel"]:>14.2e} '
              f'{c["grad_norm_rel"]:>15.2e} {c["time_ratio"]:>6.2f} {c["cpu_ratio"]:>6.2f} '
              f'{c["peak_ratio"]:>6.2f} {c["extra_ratio"]:>6.2f} {c["work_ratio"]:>6.3f}')


if __name__ == '__main__':
    main()
