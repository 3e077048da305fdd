# Copyright (c) mmaffseg contributors. All rights reserved.
"""A tiny mmengine training (a linear model with dropout, random data) that writes real
mmengine checkpoints in well under a second; draws from torch's, numpy's and Python's RNGs."""
import random
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset


class ToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x, y, mode: str = 'tensor'):
        x, y = torch.stack(x), torch.stack(y)
        out = self.linear(self.dropout(x))
        if mode == 'loss':
            return dict(loss=((out - y)**2).mean())
        return [dict(out=o) for o in out]


class NoisyDataset(Dataset):
    """Samples with numpy and Python random noise (as random augmentations draw)."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        x = torch.full((4, ), float(i)) + torch.from_numpy(np.random.rand(4)).float()
        return dict(x=x * random.random(), y=torch.ones(1))


class ZeroMetric(BaseMetric):

    def process(self, data_batch, data_samples) -> None:
        self.results.append(0.0)

    def compute_metrics(self, results) -> dict:
        return dict(zero=0.0)


def toy_runner(work_dir: str, max_iters: int, resume: bool = False,
               load_from: Optional[str] = None, checkpoint_type: str = 'CheckpointHook',
               extra_hooks: Optional[dict] = None, val_interval: int = 0,
               max_keep_ckpts: int = -1, by_epoch: bool = False,
               model: Optional[BaseModel] = None) -> Runner:
    """A runner saving a checkpoint every 2 iterations, or every epoch (4 iterations) when
    ``by_epoch`` (``max_iters`` and ``val_interval`` then count epochs); ``model`` replaces
    :class:`ToyModel`."""
    hooks = dict(checkpoint=dict(type=checkpoint_type, interval=1 if by_epoch else 2,
                                 by_epoch=by_epoch, max_keep_ckpts=max_keep_ckpts))
    hooks.update(extra_hooks or {})
    kwargs = {}
    if val_interval:
        kwargs = dict(val_dataloader=dict(dataset=NoisyDataset(), batch_size=2,
                                          sampler=dict(type='DefaultSampler', shuffle=False)),
                      val_cfg=dict(), val_evaluator=[ZeroMetric()])
    torch.manual_seed(0)  # the model is built here, before the runner seeds anything
    return Runner(
        model=model or ToyModel(), work_dir=work_dir,
        train_dataloader=dict(dataset=NoisyDataset(), batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=by_epoch, val_interval=val_interval or max_iters + 1,
                       **{'max_epochs' if by_epoch else 'max_iters': max_iters}),
        param_scheduler=dict(type='LinearLR', by_epoch=False, begin=0, end=4),
        default_hooks=hooks, randomness=dict(seed=0), resume=resume, load_from=load_from,
        default_scope='mmseg', **kwargs)
