# Copyright (c) mmaffseg contributors. All rights reserved.
"""Shared fixtures: a tiny synthetic Cityscapes-layout dataset and CPU thread limits."""
import os

import pytest
import torch

# 2-core CI: keep each test process to a bounded number of threads.
torch.set_num_threads(min(2, os.cpu_count() or 1))

# Tools run as subprocesses (tools/train.py ...) must import this checkout's mmaffseg, not
# whichever copy happens to be installed; benchmark cases import the tools' benchmarks package.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ['PYTHONPATH'] = os.pathsep.join(
    p for p in (REPO, os.path.join(REPO, 'tools', 'analysis_tools'),
                os.environ.get('PYTHONPATH')) if p)

from helpers import TINY_HW  # noqa: E402


@pytest.fixture(autouse=True)
def fixed_global_rng():
    """Every test starts from the same global RNG state (torch, numpy, random) and torch
    modes, so that a test that draws from them (model initialisation does) gives the same
    result whatever ran before it; tests of random behaviour use their own generators."""
    import random

    import numpy as np
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    # nor from a torch mode an earlier test left on: autocast (bf16 numbers would differ from
    # the golden fixtures' float32) or another default dtype
    torch.set_autocast_enabled('cpu', False)
    torch.set_default_dtype(torch.float32)
    torch.set_float32_matmul_precision('highest')
    yield


@pytest.fixture(scope='session', autouse=True)
def private_hash_cache(tmp_path_factory):
    """Checkpoint digests (``mmaffseg.utils.provenance``) cached in a temporary folder, not in
    ``~/.cache/mmaffseg``, by the tests and the tools they run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('MMAFFSEG_CACHE_DIR', str(tmp_path_factory.mktemp('hash_cache')))
        yield


@pytest.fixture(scope='module')
def one_thread():
    """Whole-model forwards on a shared 2-core machine: 1 thread avoids OpenMP contention.

    Use it per module with ``pytestmark = pytest.mark.usefixtures('one_thread')``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def tiny_synthetic_root(tmp_path_factory) -> str:
    """A 6-train / 3-val synthetic dataset of 64x128 images (session-wide, read-only)."""
    from mmaffseg.datasets import generate_synthetic_cityscapes
    root = tmp_path_factory.mktemp('synthetic') / 'synthetic_cityscapes'
    return generate_synthetic_cityscapes(str(root), num_train=6, num_val=3, seed=0,
                                         height=TINY_HW[0], width=TINY_HW[1], verbose=False)
