# Copyright (c) mmaffseg contributors. All rights reserved.
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmaffseg.utils import enable_trusted_checkpoint_loading, load_trusted_local_checkpoint


def _mmengine_style_checkpoint(path):
    # What mmengine writes besides tensors: message-hub buffers and numpy values.
    buf = HistoryBuffer()
    buf.update(1.5)
    torch.save(dict(state_dict=dict(w=torch.ones(2)),
                    message_hub=dict(log_scalars=dict(loss=buf)), meta=dict(seed=np.int64(3))),
               path)


def test_plain_torch_load_rejects_mmengine_checkpoints(tmp_path):
    """Guards the reason this module exists (torch >= 2.6 defaults to weights_only=True)."""
    path = tmp_path / 'c.pth'
    _mmengine_style_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_trusted_loading_through_mmengine(tmp_path):
    path = tmp_path / 'c.pth'
    _mmengine_style_checkpoint(path)
    enable_trusted_checkpoint_loading()
    enable_trusted_checkpoint_loading()  # idempotent
    ckpt = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert ckpt['message_hub']['log_scalars']['loss'].current() == 1.5
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_trusted_local_checkpoint(str(tmp_path / 'missing.pth'))
