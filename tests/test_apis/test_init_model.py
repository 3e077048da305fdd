# Copyright (c) mmaffseg contributors. All rights reserved.
"""mmaffseg.apis.init_model: mmseg's arguments, strict and safe loading, class names from the
checkpoint or else from the config (a bare state dict has no ``meta``)."""
import pytest
import torch
from untrained import QUICKSTARTS, small_test_config

from mmaffseg.apis import config_dataset_meta, init_model
from mmaffseg.datasets import SyntheticCityscapesDataset
from mmaffseg.utils import CheckpointError

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def cfg():
    return small_test_config(QUICKSTARTS['deeplabv3plus'])


@pytest.fixture(scope='module')
def state_dict(cfg):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return init_model(cfg.copy(), None, device='cpu').state_dict()


def test_bare_state_dict_takes_class_names_from_the_config(cfg, state_dict, tmp_path):
    path = str(tmp_path / 'bare.pth')
    torch.save(state_dict, path)  # no 'meta', no 'state_dict' key
    model = init_model(cfg.copy(), path, device='cpu')
    meta = SyntheticCityscapesDataset.METAINFO
    assert model.dataset_meta['classes'] == list(meta['classes'])
    assert model.dataset_meta['palette'] == [list(c) for c in meta['palette']]
    assert not model.training
    key = 'decode_head.conv_seg.weight'
    assert torch.equal(model.state_dict()[key], state_dict[key])


def test_class_names_of_the_checkpoint_win(cfg, state_dict, tmp_path):
    path = str(tmp_path / 'with_meta.pth')
    names = [f'class{i}' for i in range(19)]
    palette = [[i, i, i] for i in range(19)]
    torch.save({'state_dict': state_dict,
                'meta': {'dataset_meta': {'classes': names, 'palette': palette}}}, path)
    assert init_model(cfg.copy(), path, device='cpu').dataset_meta == dict(classes=names,
                                                                           palette=palette)


def test_a_checkpoint_of_another_model_is_refused_unless_not_strict(cfg, state_dict, tmp_path):
    path = str(tmp_path / 'other.pth')
    other = dict(state_dict)
    other['decode_head.conv_seg.weight'] = torch.zeros(3, *state_dict[
        'decode_head.conv_seg.weight'].shape[1:])
    torch.save({'state_dict': other}, path)
    with pytest.raises(CheckpointError, match='mis-sized.*--non-strict'):
        init_model(cfg.copy(), path, device='cpu', opt_out='--non-strict')
    model = init_model(cfg.copy(), path, device='cpu', strict=False)
    key = 'decode_head.conv_seg.bias'  # a fitting weight was loaded
    assert torch.equal(model.state_dict()[key], state_dict[key])


def test_config_dataset_meta_takes_the_dataset_setting_over_its_class(cfg):
    cfg = cfg.copy()
    assert config_dataset_meta(cfg)['classes'] == list(
        SyntheticCityscapesDataset.METAINFO['classes'])
    cfg.test_dataloader.dataset.metainfo = dict(classes=('a', 'b'), palette=[[1, 2, 3],
                                                                              [4, 5, 6]])
    assert config_dataset_meta(cfg) == dict(classes=['a', 'b'], palette=[[1, 2, 3], [4, 5, 6]])
    for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        cfg[key] = None
    assert config_dataset_meta(cfg) is None
