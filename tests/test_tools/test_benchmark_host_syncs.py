# Copyright (c) mmaffseg contributors. All rights reserved.
"""benchmark.py host-syncs rebuilds the "before" losses from the git history and runs them."""
import subprocess

import pytest
from benchmarks import host_syncs


def _has_revision(rev: str) -> bool:
    return subprocess.run(['git', '-C', host_syncs.REPO, 'cat-file', '-e', f'{rev}^{{commit}}'],
                          capture_output=True).returncode == 0


@pytest.mark.skipif(not _has_revision('27f7fc1'), reason='needs the git history of the checkout')
def test_before_metric_losses_load_although_their_helpers_moved():
    """The files at 27f7fc1 import helpers from models/layers and models/utils that now live in
    ops/ (:data:`host_syncs.MOVED_MODULES`); both variants draw the same pixels from the same
    seed, so they give the same loss."""
    rows = dict(host_syncs.metric_loss_rows('27f7fc1', batch=1, device='cpu'))
    assert set(rows) == {'N-pair fwd+bwd', 'inst-emb fwd+bwd'}
    for what, steps in rows.items():
        before, after = (float(steps[v]().detach()) for v in ('before', 'after'))
        assert before == pytest.approx(after, rel=1e-6), what
