# Copyright (c) mmaffseg contributors. All rights reserved.
"""Context prior affinity loss: ours (factorised) against its floor and the materialised A.

    python tools/analysis_tools/benchmark.py cp-loss [--prior-sizes 64 96 128] [--batch 2]
        [--num-classes 19] [--threads 1] [--form official] [--repeat 3] [--block-elems N]
        [--max-gb auto] [--omp-wait-policy passive] [--no-baseline] [--out F.json]

Inputs, the same in every case: ``P = sigmoid(randn)`` (B, N, N), N = prior_size^2, and
Cityscapes-like labels on the prior grid (class blocks of 8 x 8 cells drawn from
``--num-classes``, 10 % of the blocks ignore = 255). Every case runs in a fresh process
(:func:`benchmarks.profiling.run_case`) and is measured by
:func:`benchmarks.profiling.measure` (median of ``--repeat`` forward + backward calls after a
warm-up at prior size 8; wall and process CPU time; peak memory):

* ``ours``: :func:`context_prior_loss`. In the same process, before it, the **floor**:

  - ``memory floor`` = bytes that any implementation moves / measured bandwidth: forward reads
    P once, backward reads P once and writes dP once (3 * B * N^2 * 4 bytes); the bandwidth is
    that of a 1 GiB (``--copy-mib``) float32 copy into an already allocated tensor, timed here
    (bytes read + written per second, best of 3).
  - ``pass floor`` = one elementwise pass over P each way, timed here on the same P: forward a
    log of every entry summed (the unary BCE needs one log per entry; blocks of 2**20
    entries, or ``--block-elems``, into a reused buffer, so one read of P), backward
    ``torch.reciprocal(P)`` into a new tensor (one read of P, one division per entry, one write
    of a freshly allocated B x N x N tensor, as autograd allocates dP; on CPU the kernel pages
    that tensor in, which is part of the cost any implementation pays).

  ``floor`` = max(memory floor, pass floor) in wall time; the CPU-time ratio divides by the pass
  floor's CPU time. The table prints floor, time and their ratio (wall and CPU).
* ``baseline``: the loss before its kernels were merged (:mod:`.cp_loss_baseline`: the row sums
  of a block in three calls, and recall / specificity / precision as three (B, N) tensors
  instead of one (3, B, N) tensor; the same backward), timed as ``ours``; the table "ours /
  baseline" gives the time ratio and the aten operations per forward + backward of each
  (``torch.profiler``, views included; on a GPU about one kernel launch per non-view
  operation). ``--no-baseline`` leaves it out.
* ``materialised``: :func:`context_prior_loss_materialised` (one-hot L, ``A = L L^T``, PyTorch's
  BCE), the reference for the values, the gradients and the memory; a run whose peak,
  extrapolated from the previous prior size, would exceed ``--max-gb`` is skipped.

Memory: ``work`` is the peak above what the process held after building the inputs (so it
includes dP, B * N^2 * 4 bytes, which no implementation avoids); ``loss`` = work minus dP, the
loss's own working memory (slightly negative at small sizes, where dP reuses memory the
process already held). Gradients are compared on 100k sampled entries (max difference over
max |grad|) and by their norms.

On a shared, oversubscribed CPU, OpenMP threads that spin at the end of each parallel region
inflate the time of code with many medium-sized operations; ``--omp-wait-policy passive`` sets
``OMP_WAIT_POLICY=PASSIVE`` for the cases. CPU times stay meaningful under load, wall times do
not: the load average is printed with the results.
"""
import argparse
import json
import os
import time

import torch

from mmaffseg.cli import positive_int

from .cli import command
from .profiling import CaseError, count_aten_ops, emit_result, measure, run_case

SHARED = dict(threads=1, repeat=3, out=None)
SHARED_HELP = dict(
    repeat='timed calls of ours and of each floor pass (median); the materialised reference '
    'runs once',
    out='also write the results (without gradient samples) as JSON')
VARIANTS = ('ours', 'baseline', 'materialised')
NUM_SAMPLES = 100_000


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


def copy_bandwidth_gbs(mib: int = 1024, repeat: int = 3) -> float:
    """Bytes read + written per second by a ``mib`` MiB float32 copy into an allocated tensor
    (best of ``repeat``)."""
    src = torch.rand(mib * 2**18)
    dst = torch.empty_like(src)
    dst.copy_(src)  # pages both in
    best = float('inf')
    for _ in range(repeat):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.numel() * src.element_size() / best / 1e9


def measure_floor(prior: torch.Tensor, block_elems: int, repeat: int,
                  copy_mib: int = 1024) -> dict:
    """The memory floor and the one-pass-each-way floor of a loss on ``prior``."""
    flat = prior.view(-1)
    block = min(block_elems, flat.numel())
    buf = prior.new_empty(block)

    def forward_pass():  # one log per entry, summed: one read of P
        parts = []
        for start in range(0, flat.numel(), block):
            part = flat[start:start + block]
            parts.append(torch.log(part, out=buf[:part.numel()]).sum())
        return torch.stack(parts).sum()

    def backward_pass():  # one division per entry into a new tensor: read P, write "dP"
        return torch.reciprocal(prior)

    bandwidth = copy_bandwidth_gbs(copy_mib)
    fwd = measure(forward_pass, warmup=0, repeat=repeat, memory=False)
    bwd = measure(backward_pass, warmup=0, repeat=repeat, memory=False)
    nbytes = 3 * prior.numel() * prior.element_size()
    return dict(bandwidth_gbs=bandwidth, bytes=nbytes, memory_floor_s=nbytes / bandwidth / 1e9,
                pass_fwd=fwd, pass_bwd=bwd, pass_floor_s=fwd['wall_s'] + bwd['wall_s'],
                pass_floor_cpu_s=fwd['cpu_s'] + bwd['cpu_s'])


def run_variant(args: argparse.Namespace) -> dict:
    """Worker: forward + backward of one variant (and the floor for ours); its measurements."""
    from mmaffseg.models.losses import context_prior_loss, context_prior_loss_materialised
    kwargs = dict(form=args.form)
    if args.variant in ('ours', 'baseline'):
        fn = context_prior_loss
        if args.variant == 'baseline':
            from .cp_loss_baseline import context_prior_loss_unmerged as fn
        if args.block_elems:
            kwargs['block_elems'] = args.block_elems
    else:
        fn = context_prior_loss_materialised
    warm, warm_label = make_inputs(8, args.batch, args.num_classes)
    fn(warm.requires_grad_(), warm_label, **kwargs).backward()
    del warm, warm_label
    prior, label = make_inputs(args.prior_size, args.batch, args.num_classes)
    result = {}
    if args.variant == 'ours':
        result['floor'] = measure_floor(prior, args.block_elems or (1 << 20), args.repeat,
                                        args.copy_mib)
    prior.requires_grad_()
    out = {}

    def step():
        prior.grad = None
        out['loss'] = fn(prior, label, **kwargs)
        out['loss'].backward()

    repeat = args.repeat if args.variant != 'materialised' else 1
    result.update(measure(step, warmup=0, repeat=repeat))
    if args.variant != 'materialised':
        result['aten_ops'] = count_aten_ops(step)[0]
    result['loss_mb'] = result['work_mb'] - prior.numel() * prior.element_size() / 2**20
    grad = prior.grad.flatten()
    idx = torch.randint(0, grad.numel(), (NUM_SAMPLES, ),
                        generator=torch.Generator().manual_seed(1))
    result.update(loss=float(out['loss'].detach()), grad_norm=float(grad.double().norm()),
                  grad_max=float(grad.abs().max()), grad_samples=grad[idx].tolist())
    return result


def available_gb() -> float:
    with open('/proc/meminfo') as f:
        info = {line.split(':')[0]: int(line.split()[1]) for line in f}
    return info['MemAvailable'] / 2**20


def spawn(args: argparse.Namespace, variant: str, prior_size: int) -> dict:
    cmd = command('cp-loss', '--worker', variant, '--prior-sizes', prior_size, '--batch',
                  args.batch, '--num-classes', args.num_classes, '--threads', args.threads,
                  '--form', args.form, '--repeat', args.repeat, '--copy-mib', args.copy_mib)
    if args.block_elems:
        cmd += ['--block-elems', str(args.block_elems)]
    env = dict(os.environ)
    if args.omp_wait_policy != 'default':
        env['OMP_WAIT_POLICY'] = args.omp_wait_policy.upper()
    try:
        return run_case(cmd, env=env)
    except CaseError as e:
        return dict(error=str(e).splitlines()[-1][:200])


def _ratio(a: float, b: float) -> float:
    return a / b if b else float('nan')


def compare(ours: dict, ref: dict) -> dict:
    a, b = torch.tensor(ours['grad_samples']), torch.tensor(ref['grad_samples'])
    return dict(
        loss_rel=_ratio(abs(ours['loss'] - ref['loss']), abs(ref['loss'])),
        grad_max_rel=_ratio(float((a - b).abs().max()), ref['grad_max']),
        grad_norm_rel=_ratio(abs(ours['grad_norm'] - ref['grad_norm']), ref['grad_norm']),
        **{key: _ratio(ours[field], ref[field])
           for key, field in (('wall', 'wall_s'), ('cpu', 'cpu_s'), ('peak', 'peak_mb'),
                              ('work', 'work_mb'), ('loss_mem', 'loss_mb'))})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--prior-sizes', type=positive_int, nargs='+', default=[64, 96, 128])
    parser.add_argument('--batch', type=positive_int, default=2)
    parser.add_argument('--num-classes', type=positive_int, default=19)
    parser.add_argument('--form', default='official', choices=['official', 'paper'])
    parser.add_argument('--block-elems', type=positive_int, default=None,
                        help="ours' block_elems (default: the loss's default)")
    parser.add_argument('--copy-mib', type=positive_int, default=1024,
                        help='size of the copy that measures the memory bandwidth')
    parser.add_argument('--max-gb', type=float, default=None,
                        help='skip materialised runs expected to exceed this peak RSS '
                        '(default: 85%% of MemAvailable)')
    parser.add_argument('--omp-wait-policy', default='default', choices=['default', 'passive'],
                        help='OMP_WAIT_POLICY of the workers (see the module docstring)')
    parser.add_argument('--no-baseline', action='store_true',
                        help='leave out the loss before its kernels were merged')
    parser.add_argument('--worker', choices=VARIANTS, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.worker:
        args.variant, args.prior_size = args.worker, args.prior_sizes[0]
        emit_result(run_variant(args))
        return 0
    max_gb = args.max_gb or 0.85 * available_gb()
    print(f'B={args.batch}, {args.num_classes} classes, form={args.form}, {args.threads} '
          f'threads, OMP wait policy {args.omp_wait_policy}, forward + backward on CPU, '
          f'median of {args.repeat}; limit {max_gb:.1f} GB; load average before '
          f'{os.getloadavg()[0]:.2f}\n')
    header = (f'{"prior":>5} {"N":>6} {"variant":>12} {"loss":>10} {"wall s":>8} {"cpu s":>8} '
              f'{"peak GB":>8} {"work GB":>8} {"loss GB":>8}')
    print(header)
    print('-' * len(header))
    rows, floors, last_ref, everything, against_baseline = [], [], None, {}, []
    for size in args.prior_sizes:
        n = size * size
        results = {'ours': spawn(args, 'ours', size)}
        if not args.no_baseline:
            results['baseline'] = spawn(args, 'baseline', size)
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
            print(f'{size:>5} {n:>6} {variant:>12} {r["loss"]:>10.6f} {r["wall_s"]:>8.2f} '
                  f'{r["cpu_s"]:>8.2f} {r["peak_mb"] / 1024:>8.2f} {r["work_mb"] / 1024:>8.2f} '
                  f'{r["loss_mb"] / 1024:>8.3f}')
        if 'floor' in results['ours']:
            floors.append((size, results['ours']))
        if all('error' not in results.get(k, {}) for k in ('ours', 'baseline')):
            against_baseline.append((size, results['ours'], results['baseline']))
        if all('error' not in results[k] for k in ('ours', 'materialised')):
            rows.append((size, compare(results['ours'], results['materialised'])))
        everything[size] = {k: {kk: vv for kk, vv in v.items() if kk != 'grad_samples'}
                            for k, v in results.items()}
    print('\nours against its floor (see the module docstring)')
    print(f'{"prior":>5} {"GB/s":>6} {"mem floor s":>11} {"pass fwd s":>10} {"pass bwd s":>10} '
          f'{"floor s":>8} {"ours s":>7} {"ratio":>6} {"floor cpu":>9} {"ours cpu":>8} '
          f'{"cpu ratio":>9}')
    for size, r in floors:
        f = r['floor']
        floor = max(f['memory_floor_s'], f['pass_floor_s'])
        print(f'{size:>5} {f["bandwidth_gbs"]:>6.1f} {f["memory_floor_s"]:>11.2f} '
              f'{f["pass_fwd"]["wall_s"]:>10.2f} {f["pass_bwd"]["wall_s"]:>10.2f} {floor:>8.2f} '
              f'{r["wall_s"]:>7.2f} {_ratio(r["wall_s"], floor):>6.2f} '
              f'{f["pass_floor_cpu_s"]:>9.2f} {r["cpu_s"]:>8.2f} '
              f'{_ratio(r["cpu_s"], f["pass_floor_cpu_s"]):>9.2f}')
    print('\nours / materialised')
    print(f'{"prior":>5} {"loss rel diff":>14} {"grad max diff":>14} {"grad norm diff":>15} '
          f'{"wall":>6} {"cpu":>6} {"peak":>6} {"work":>6} {"loss mem":>8}')
    for size, c in rows:
        print(f'{size:>5} {c["loss_rel"]:>14.2e} {c["grad_max_rel"]:>14.2e} '
              f'{c["grad_norm_rel"]:>15.2e} {c["wall"]:>6.2f} {c["cpu"]:>6.2f} '
              f'{c["peak"]:>6.2f} {c["work"]:>6.2f} {c["loss_mem"]:>8.3f}')
    if not args.no_baseline:
        print('\nours / baseline (before the merged kernels), both measured above')
        print(f'{"prior":>5} {"wall":>6} {"cpu":>6} {"ops ours":>8} {"ops base":>8} '
              f'{"loss rel diff":>14} {"grad max diff":>14}')
        for size, ours, base in against_baseline:
            c = compare(ours, base)
            print(f'{size:>5} {_ratio(ours["wall_s"], base["wall_s"]):>6.2f} '
                  f'{_ratio(ours["cpu_s"], base["cpu_s"]):>6.2f} {ours["aten_ops"]:>8} '
                  f'{base["aten_ops"]:>8} {c["loss_rel"]:>14.2e} {c["grad_max_rel"]:>14.2e}')
    print(f'\nload average after: {" ".join(f"{x:.2f}" for x in os.getloadavg())}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(everything, f, indent=1)
    return 0
