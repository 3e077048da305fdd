# Copyright (c) mmaffseg contributors. All rights reserved.
"""Helpers shared by test modules (fixtures stay in conftest.py): ``from helpers import ...``."""

#: Image size of the tiny synthetic dataset (``tiny_synthetic_root`` fixture in conftest.py).
TINY_HW = (64, 128)


def tiny_synthetic_overrides(root: str) -> dict:
    """``--cfg-options`` style overrides pointing a synthetic config at the tiny dataset."""
    common = dict(data_root=root, num_train=6, num_val=3, image_size=list(TINY_HW))
    out = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for k, v in common.items():
            out[f'{loader}.dataset.{k}'] = v
        out[f'{loader}.num_workers'] = 0
        out[f'{loader}.persistent_workers'] = False
    out['train_dataloader.batch_size'] = 2
    return out
