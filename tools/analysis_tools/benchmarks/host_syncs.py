# Copyright (c) mmaffseg contributors. All rights reserved.
"""Steps per second of the losses before and after their batched rewrites, in one run.

    python tools/analysis_tools/benchmark.py host-syncs [--baseline-rev c301291]
        [--sampler-baseline-rev 27f7fc1] [--steps 20] [--threads 1] [--device cpu] [--model]

The "before" implementation is the file ``mmaffseg/models/losses/context_prior_loss.py`` at
``--baseline-rev`` (read with ``git show``; it walked the cells class by class, with a
``nonzero`` per class and ``float(grad_out)``, i.e. data-dependent host synchronisations); the
"after" one is this checkout's (row blocks compared against the labels, class sizes from one
sort: the number of operations depends on the shapes only). Both run forward + backward on the
same inputs: ``P = sigmoid(randn)`` (B, N, N) and labels in 4 x 4 cell blocks on the quick-start
prior grid (16 x 32 cells, 19 classes, 10 % ignore). Printed per variant: steps/s, the number
of aten operations per step (``torch.profiler``), how many of them synchronise with the host
(``nonzero``, ``unique``, ``item``/``float()``...: on a GPU each waits for the device) and the
loss, then the ratio after / before.

Two more rows time the sampled metric losses, whose "before" files (``npair_l2_loss.py`` and
``instance_embedding_loss.py`` at ``--sampler-baseline-rev``) drew the pixels image by image
(``nonzero`` + ``unique`` per image) and whose "after" draw the whole batch from one sort with
one host synchronisation: the N-pair L2 loss at the semantic-features quick-start's settings
(embedding (2, 32, 128, 256), 3 segments x 200 pixels x 4 draws) and the instance-embedding
loss at the instance-embedding quick-start's (embedding (2, 64, 32, 64), 10 points per
instance). Their label maps hold 24 segments in 8 x 8 blocks (10 % void) in every image, so
both variants draw the same pixels from the same seed and print the same loss.

``--model`` adds the full CPNet quick-start training step (forward + backward of
``configs/cpnet/cpnet_r50-d8-slim_quickstart_synthetic-128x256.py``, batch 2, 128 x 256) with
each loss plugged into the head. ``--device cuda`` gives the GPU rows.
"""
import argparse
import os.path as osp
import subprocess
import types

import torch

import mmaffseg
from mmaffseg.cli import exit_with_error, positive_int, report_error
from mmaffseg.models.losses.context_prior_loss import context_prior_loss

from .profiling import count_aten_ops, measure

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
LOSS_PATH = 'mmaffseg/models/losses/context_prior_loss.py'
CPNET_CFG = osp.join(REPO, 'configs', 'cpnet', 'cpnet_r50-d8-slim_quickstart_synthetic-128x256.py')
NPAIR_PATH = 'mmaffseg/models/losses/npair_l2_loss.py'
EMBEDDING_PATH = 'mmaffseg/models/losses/instance_embedding_loss.py'
#: Modules the "before" files import (relative to ``mmaffseg.models.losses``) that have moved
#: since, and where they are now.
MOVED_MODULES = {
    '..layers.pairwise': 'mmaffseg.ops.pairwise',
    '..layers.embedding_similarity': 'mmaffseg.ops.embedding_similarity',
    '..utils.precision': 'mmaffseg.ops.precision',
}


def load_baseline(rev: str, path: str = LOSS_PATH, drop: str = '',
                  **names) -> types.ModuleType:
    """The loss module ``path`` as it was at ``rev`` (its registry decorator dropped, so it does
    not clash with the current class of the same name; relative imports resolve in the current
    package, or in today's home of a module that has moved, :data:`MOVED_MODULES`). ``drop``: a
    line of the source to remove, whose ``names`` are given instead."""
    try:
        source = subprocess.run(['git', '-C', REPO, 'show', f'{rev}:{path}'], check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:  # no git, not a clone, unknown rev
        stderr = getattr(e, 'stderr', '') or str(e)
        exit_with_error(f'--baseline-rev / --sampler-baseline-rev {rev}: cannot read {path} '
                        f'with git show ({stderr.strip().splitlines()[-1]}); the before/after '
                        'comparison needs a git clone with that commit')
    source = source.replace('@MODELS.register_module()\n', '')
    for old, new in MOVED_MODULES.items():
        source = source.replace(f'from {old} import', f'from {new} import')
    if drop:
        source = source.replace(drop, '')
    module = types.ModuleType(osp.splitext(osp.basename(path))[0] + '_baseline')
    module.__package__ = 'mmaffseg.models.losses'
    module.__dict__.update(names)
    exec(compile(source, f'{rev}:{path}', 'exec'), module.__dict__)
    return module


def block_labels(batch: int, size, num_segments: int = 24, block: int = 8,
                 device: str = 'cpu') -> torch.Tensor:
    """Label maps of ``num_segments`` ids in ``block`` x ``block`` squares, every id present in
    every image, 10 % of the squares void (255)."""
    g = torch.Generator().manual_seed(0)
    grid = (size[0] // block, size[1] // block)
    coarse = torch.randint(0, num_segments, (batch, *grid), generator=g)
    coarse[torch.rand(coarse.shape, generator=g) < 0.1] = 255
    coarse.view(batch, -1)[:, :num_segments] = torch.arange(num_segments)
    return coarse.repeat_interleave(block, 1).repeat_interleave(block, 2).to(device)


def metric_loss_step_fn(loss: torch.nn.Module, embedding: torch.Tensor, labels: torch.Tensor):
    """Forward + backward of a sampled metric loss, the draws seeded identically every step."""
    def step():
        e = embedding.detach().requires_grad_()
        gen = torch.Generator(device=labels.device).manual_seed(0)
        value = loss(e, labels, generator=gen)
        value.backward()
        return value
    return step


def metric_loss_rows(rev: str, batch: int, device: str) -> list:
    """The N-pair and instance-embedding rows: (what, {variant: step})."""
    from mmaffseg.models.losses import InstanceEmbeddingLoss, NPairL2Loss
    old_npair = load_baseline(rev, NPAIR_PATH)
    old_embedding = load_baseline(
        rev, EMBEDDING_PATH, drop='from .npair_l2_loss import sample_segment_pixels\n',
        sample_segment_pixels=old_npair.sample_segment_pixels)
    g = torch.Generator().manual_seed(1)
    rows = []
    for what, classes, kwargs, shape in (
            ('N-pair fwd+bwd', (old_npair.NPairL2Loss, NPairL2Loss),
             dict(num_instances=3, num_pixels=200, num_resamples=4), (32, 128, 256)),
            ('inst-emb fwd+bwd', (old_embedding.InstanceEmbeddingLoss, InstanceEmbeddingLoss),
             dict(num_points=10), (64, 32, 64))):
        embedding = torch.randn(batch, *shape, generator=g).to(device)
        labels = block_labels(batch, shape[1:], device=device)
        rows.append((what, {name: metric_loss_step_fn(cls(**kwargs), embedding, labels)
                            for name, cls in zip(('before', 'after'), classes)}))
    return rows


def make_inputs(batch: int, grid=(16, 32), num_classes: int = 19, device: str = 'cpu'):
    g = torch.Generator().manual_seed(0)
    n = grid[0] * grid[1]
    prior = torch.randn(batch, n, n, generator=g).sigmoid_()
    coarse = torch.randint(0, num_classes, (batch, grid[0] // 4, grid[1] // 4), generator=g)
    coarse[torch.rand(coarse.shape, generator=g) < 0.1] = 255
    label = coarse.repeat_interleave(4, 1).repeat_interleave(4, 2).reshape(batch, n)
    return prior.to(device), label.to(device)


def loss_step_fn(fn, prior: torch.Tensor, label: torch.Tensor):
    def step():
        p = prior.detach().requires_grad_()
        loss = fn(p, label)
        loss.backward()
        return loss
    return step


def model_step_fn(fn, device: str):
    """One CPNet quick-start training step with ``fn`` as the context prior loss."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmaffseg.cli import load_config

    from .random_batch import random_seg_batch
    cfg = load_config(CPNET_CFG)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).to(device).train()
    head = model.decode_head
    weight = head.loss_prior_decode.loss_weight
    head.loss_prior_decode.forward = lambda prior, label, **kw: weight * fn(prior, label)
    batch = random_seg_batch(head.num_classes, tuple(cfg.crop_size), n=2, device=device)
    data = model.data_preprocessor(batch, True)

    def step():
        model.zero_grad(set_to_none=True)
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        total.backward()
        return losses['decode.loss_prior']
    return step


SHARED = dict(threads=1, device='cpu')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--baseline-rev', default='c301291',
                        help='git revision of the "before" loss (default: the last commit '
                        'before the batched rewrite)')
    parser.add_argument('--sampler-baseline-rev', default='27f7fc1',
                        help='git revision of the "before" N-pair and instance-embedding losses '
                        '(default: the last commit before the batched sampler)')
    parser.add_argument('--batch', type=positive_int, default=2)
    parser.add_argument('--steps', type=positive_int, default=20)
    parser.add_argument('--model', action='store_true', help='also time a full CPNet step')


def run(args: argparse.Namespace) -> int:
    if osp.realpath(osp.dirname(mmaffseg.__file__)) != osp.realpath(osp.join(REPO, 'mmaffseg')):
        return report_error(f'host-syncs times this checkout\'s losses against their git history, '
                            f'but imported mmaffseg from {osp.dirname(mmaffseg.__file__)}; run '
                            f'it with PYTHONPATH={REPO}')
    variants = dict(before=load_baseline(args.baseline_rev).context_prior_loss,
                    after=context_prior_loss)
    prior, label = make_inputs(args.batch, device=args.device)
    rows = [('CP loss fwd+bwd', {k: loss_step_fn(fn, prior, label)
                                 for k, fn in variants.items()})]
    rows += metric_loss_rows(args.sampler_baseline_rev, args.batch, args.device)
    if args.model:
        rows.append(('CPNet train step', {k: model_step_fn(fn, args.device)
                                          for k, fn in variants.items()}))
    print(f'device {args.device}, {args.threads} thread(s), batch {args.batch}, prior grid '
          f'16 x 32, {args.steps} steps each after 1 warm-up; before = {args.baseline_rev} (CP), '
          f'{args.sampler_baseline_rev} (N-pair, instance embedding)')
    print('steps/s: from the median wall time per step; CPU st/s: from the median process '
          'CPU time (meaningful on a loaded machine); the variants\' steps alternate')
    print(f'{"what":<18} {"variant":<7} {"steps/s":>8} {"CPU st/s":>9} {"aten ops":>9} '
          f'{"syncs":>6} {"loss":>10}')
    for what, steps in rows:
        # the variants' steps alternate, so that a changing machine load hits both alike
        times = {name: ([], []) for name in steps}
        for step in steps.values():
            step()  # warm-up
        for _ in range(args.steps):
            for name, step in steps.items():
                r = measure(step, warmup=0, repeat=1, device=args.device, memory=False)
                times[name][0].append(r['wall_s'])
                times[name][1].append(r['cpu_s'])
        speed = {name: 1 / sorted(w)[len(w) // 2] for name, (w, _) in times.items()}
        cpu_speed = {name: 1 / sorted(c)[len(c) // 2] for name, (_, c) in times.items()}
        for name, step in steps.items():
            loss = float(step().detach())
            ops, syncs = count_aten_ops(step)
            print(f'{what:<18} {name:<7} {speed[name]:8.2f} {cpu_speed[name]:9.2f} {ops:9d} '
                  f'{syncs:6d} {loss:10.5f}')
        print(f'{what:<18} ratio after / before: {speed["after"] / speed["before"]:.2f}x '
              f'(CPU time: {cpu_speed["after"] / cpu_speed["before"]:.2f}x)')
    return 0
