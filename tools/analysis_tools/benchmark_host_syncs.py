# Copyright (c) mmaffseg contributors. All rights reserved.
"""Steps per second of the context prior loss before and after its batched rewrite, in one run.

    python tools/analysis_tools/benchmark_host_syncs.py [--baseline-rev c301291] [--steps 20]
        [--threads 1] [--device cpu] [--model]

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

``--model`` adds the full CPNet quick-start training step (forward + backward of
``configs/cpnet/cpnet_r50-d8-slim_quickstart_synthetic-128x256.py``, batch 2, 128 x 256) with
each loss plugged into the head. ``--device cuda`` gives the GPU rows.
"""
import argparse
import os.path as osp
import subprocess
import sys
import types

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LOSS_PATH = 'mmaffseg/models/losses/context_prior_loss.py'
CPNET_CFG = osp.join(REPO, 'configs', 'cpnet', 'cpnet_r50-d8-slim_quickstart_synthetic-128x256.py')


def load_baseline(rev: str) -> types.ModuleType:
    """The loss module as it was at ``rev`` (its registry decorator dropped, so it does not
    clash with the current class of the same name)."""
    source = subprocess.run(['git', '-C', REPO, 'show', f'{rev}:{LOSS_PATH}'], check=True,
                            capture_output=True, text=True).stdout
    source = source.replace('@MODELS.register_module()\n', '')
    module = types.ModuleType('context_prior_loss_baseline')
    exec(compile(source, f'{rev}:{LOSS_PATH}', 'exec'), module.__dict__)
    return module


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

    from mmaffseg.apis import load_config
    from mmaffseg.utils.random_batch import random_seg_batch
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--baseline-rev', default='c301291',
                        help='git revision of the "before" loss (default: the last commit '
                        'before the batched rewrite)')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--model', action='store_true', help='also time a full CPNet step')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, REPO)
    from mmaffseg.models.losses.context_prior_loss import context_prior_loss
    from mmaffseg.utils.profiling import count_aten_ops, time_fn
    variants = dict(before=load_baseline(args.baseline_rev).context_prior_loss,
                    after=context_prior_loss)
    prior, label = make_inputs(args.batch, device=args.device)
    rows = [('loss fwd+bwd', {k: loss_step_fn(fn, prior, label) for k, fn in variants.items()})]
    if args.model:
        rows.append(('CPNet train step', {k: model_step_fn(fn, args.device)
                                          for k, fn in variants.items()}))
    print(f'device {args.device}, {args.threads} thread(s), batch {args.batch}, prior grid '
          f'16 x 32, {args.steps} steps after 1 warm-up; before = {args.baseline_rev}')
    print(f'{"what":<18} {"variant":<7} {"steps/s":>8} {"aten ops":>9} {"syncs":>6} '
          f'{"loss":>10}')
    for what, steps in rows:
        speed = {}
        for name, step in steps.items():
            speed[name] = 1 / time_fn(step, warmup=1, repeat=args.steps)['mean']
            loss = float(step().detach())
            ops, syncs = count_aten_ops(step)
            print(f'{what:<18} {name:<7} {speed[name]:8.2f} {ops:9d} {syncs:6d} {loss:10.5f}')
        print(f'{what:<18} ratio after / before: {speed["after"] / speed["before"]:.2f}x')


if __name__ == '__main__':
    main()
