# Copyright (c) mmaffseg contributors. All rights reserved.
"""The quick-start config of every model family, shrunk for tests and saved at random weights.

The checkpoints hold only ``state_dict`` and ``meta`` (with ``dataset_meta``) of plain Python
and tensor types, so ``torch.load(weights_only=True)`` (torch >= 2.6's default, used by mmengine's
loader) reads them as well as a full unpickling does.
"""
import os.path as osp
from typing import Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

from mmaffseg.cli import load_config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: family -> quick-start config (every family whose model predicts from an image).
QUICKSTARTS = {
    'deeplabv3plus': 'configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py',
    'hanet': 'configs/hanet/hanet_r18-d16_quickstart_synthetic-128x256.py',
    'spnet': 'configs/spnet/spnet_r50-d8-slim_quickstart_synthetic-128x256.py',
    'cpnet': 'configs/cpnet/cpnet_r50-d8-slim_quickstart_synthetic-128x256.py',
    'dsrl': 'configs/dsrl/dsrl-deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py',
    'deeplabv1-crf':
    'configs/deeplabv1/deeplabv1-crf_vgg16-slim-largefov_quickstart_synthetic-128x256.py',
    'deeplabv2-crf': 'configs/deeplabv2/deeplabv2-crf_r18-d8_quickstart_synthetic-128x256.py',
    'psa-cam': 'configs/psa/psa-cam_r18-d8-slim_quickstart_synthetic-wsss-128x256.py',
    'semantic-features':
    'configs/semantic_features/semantic-features_r18_quickstart_synthetic-128x256.py',
    'instance-embedding':
    'configs/instance_embedding/instance-embedding_r18-fpn_quickstart_synthetic-128x256.py',
}


def small_test_config(path: str, hw: Tuple[int, int] = (64, 128)) -> Config:
    """The config with every test-time ``Resize`` at ``hw`` (H, W) instead of its own size."""
    cfg = load_config(osp.join(REPO, path))
    loader = cfg.get('test_dataloader')
    for pipeline in (cfg.get('test_pipeline') or [], loader.dataset.pipeline if loader else []):
        for step in pipeline:
            if step['type'] == 'Resize':
                step.pop('scale_factor', None)
                step['scale'] = (hw[1], hw[0])
    return cfg


def save_untrained(cfg: Config, out: str, seed: int = 0) -> str:
    """Save the config's model at its initial weights (seeded), with the dataset's meta."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = MODELS.build(cfg.model)
        model.init_weights()
    loader = cfg.get('test_dataloader') or cfg.train_dataloader
    meta = DATASETS.get(loader.dataset.type).METAINFO
    dataset_meta = dict(classes=[str(c) for c in meta['classes']],
                        palette=[[int(v) for v in color] for color in meta['palette']])
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=dataset_meta)), out)
    return out
