# Copyright (c) mmaffseg contributors. All rights reserved.
"""Every project under projects/ imports, builds from its configs and trains one step; the
strip-pooling FCN head reduces to mmseg's FCNHead when its gates are open."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from seg_batch import random_seg_batch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROJECT_CONFIGS = sorted(glob.glob(osp.join(REPO, 'projects', '*', 'configs', '*.py')))
TINY = (32, 64)


def test_every_project_has_readme_and_configs():
    projects = [p for p in glob.glob(osp.join(REPO, 'projects', '*')) if osp.isdir(p)]
    assert projects
    for project in projects:
        assert osp.isfile(osp.join(project, 'README.md')), project
        assert glob.glob(osp.join(project, 'configs', '*.py')), project


@pytest.mark.parametrize('path', PROJECT_CONFIGS, ids=osp.basename)
def test_project_config_trains_one_step(path):
    torch.manual_seed(0)
    cfg = Config.fromfile(path)
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope('mmseg')
    cfg.model.data_preprocessor.size = TINY
    model = MODELS.build(cfg.model)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    data = model.data_preprocessor(random_seg_batch(19, TINY), True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad
    optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model.test_step(model.data_preprocessor(random_seg_batch(19, TINY, n=1), False))
    assert pred[0].pred_sem_seg.data.shape[1:] == TINY


def _sp_fcn_head(**kwargs):
    import_modules_from_strings(['projects.sp_fcn_head.sp_fcn_head'])
    return MODELS.build(dict(type='SPFCNHead', **kwargs))


def test_sp_fcn_head_equals_fcn_head_with_open_gates():
    torch.manual_seed(0)
    kwargs = dict(in_channels=16, channels=8, num_classes=5, num_convs=2, concat_input=True)
    sp_head, fcn_head = _sp_fcn_head(**kwargs), FCNHead(**kwargs)
    assert len(sp_head.convs) == 4  # conv, SPM, conv, SPM
    fcn_head.load_state_dict({
        k.replace('convs.2.', 'convs.1.'): v
        for k, v in sp_head.state_dict().items() if 'convs.1.' not in k and 'convs.3.' not in k
    })
    x = [torch.randn(2, 16, 6, 10)]
    sp_head.eval(), fcn_head.eval()
    assert not torch.allclose(sp_head(x), fcn_head(x), atol=1e-4)
    for gate in (sp_head.convs[1], sp_head.convs[3]):  # sigmoid(0 * f + 30) == 1: open gates
        torch.nn.init.zeros_(gate.conv_gate.conv.weight)
        torch.nn.init.constant_(gate.conv_gate.conv.bias, 30.0)
    torch.testing.assert_close(sp_head(x), fcn_head(x))


def test_sp_fcn_head_needs_a_conv():
    with pytest.raises(ValueError, match='num_convs >= 1'):
        _sp_fcn_head(in_channels=16, channels=8, num_classes=5, num_convs=0)
