# Copyright (c) mmaffseg contributors. All rights reserved.
"""Golden parity with the official Context Prior code for every fixture in golden/cpnet.

``module`` cases build our CPHead from ``meta.ctor`` (official arguments mapped by the
converter), load the fixture weights through the checkpoint converter and compare logits and
prior map. ``loss`` cases build the head from ``meta.ctor['CPHead']`` for its label sampling,
check the ideal affinity (materialised here from our one-hot code, test only), the loss value
and its gradient with respect to the prior map.
"""
import os.path as osp

import pytest
import torch
from converters.cpnet_converter import convert_official_cpnet
from golden import assert_close, case_paths, load_case
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from official_configs import official_affinity_loss_cfg, official_cp_head_cfg

from mmaffseg.models.losses import affinity_one_hot

CASES = case_paths('cpnet')


def ideal_affinity(label: torch.Tensor) -> torch.Tensor:
    """Test-only: A = L L^T (B, N, N) from our one-hot code of prior-grid labels."""
    one_hot = affinity_one_hot(label)
    return torch.bmm(one_hot, one_hot.transpose(1, 2))


def _build(cfg: dict) -> torch.nn.Module:
    init_default_scope('mmseg')
    return MODELS.build(cfg)


def test_fixtures_present():
    kinds = {load_case(p).meta['kind'] for p in CASES}
    assert kinds == {'module', 'loss'}


@pytest.mark.parametrize('path', CASES, ids=lambda p: osp.basename(p)[:-4])
def test_cpnet_golden(path):
    case = load_case(path)
    ctor = case.meta['ctor']
    if case.meta['kind'] == 'module':
        head = _build(official_cp_head_cfg(ctor))
        missing, unexpected = head.load_state_dict(
            convert_official_cpnet(case.state_dict()), strict=False)
        assert not unexpected
        assert all(k.endswith('num_batches_tracked') for k in missing), missing
        head.eval()
        with torch.no_grad():
            seg_logits, prior_map = head.forward_with_prior([torch.from_numpy(case.inputs['x'])])
        assert_close(case, 'seg_logits', seg_logits)
        assert_close(case, 'prior_map', prior_map)
        return
    head = _build(official_cp_head_cfg(ctor['CPHead']))
    loss_fn = _build(official_affinity_loss_cfg(ctor['AffinityLoss']))
    label = head.prior_labels(torch.from_numpy(case.inputs['seg_label']))
    assert_close(case, 'ideal_affinity', ideal_affinity(label))
    prior_map = torch.from_numpy(case.inputs['prior_map']).requires_grad_()
    loss = loss_fn(prior_map, label)
    loss.backward()
    assert_close(case, 'loss', loss)
    assert_close(case, 'grad_P', prior_map.grad)
