# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/visualize_features.py on a checkpoint of the quick-start semantic-features model."""
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401  (registers the modules)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/semantic_features/'
                  'semantic-features_r18_quickstart_synthetic-128x256.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        'visualize_features', osp.join(REPO, 'tools/visualize_features.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpt')
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(root / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    return ckpt


def test_tool_writes_pictures_of_the_input_size(tmp_path, checkpoint):
    img = np.random.default_rng(0).integers(0, 255, (45, 61, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'street.png'), img)
    out_dir = tmp_path / 'out'
    _tool().main([CONFIG, checkpoint, str(tmp_path / 'street.png'), '--out', str(out_dir),
                  '--radius', '4'])
    for method in ('pca', 'random'):
        pic = cv2.imread(str(out_dir / f'street_features_{method}.png'))
        assert pic is not None and pic.shape == (45, 61, 3)
        assert pic.min() == 0 and pic.max() == 255  # min-max stretched


def test_tool_on_a_folder_writes_next_to_inputs(tmp_path, checkpoint):
    for name, hw in (('a.jpg', (33, 40)), ('b.png', (20, 29))):
        cv2.imwrite(str(tmp_path / name), np.full((*hw, 3), 128, np.uint8))
    (tmp_path / 'notes.txt').write_text('not an image')
    _tool().main([CONFIG, checkpoint, str(tmp_path), '--methods', 'pca'])
    assert cv2.imread(str(tmp_path / 'a_features_pca.png')).shape == (33, 40, 3)
    assert cv2.imread(str(tmp_path / 'b_features_pca.png')).shape == (20, 29, 3)
    assert not (tmp_path / 'a_features_random.png').exists()
    with pytest.raises(FileNotFoundError, match='missing.png is neither an image file nor'):
        _tool().main([CONFIG, checkpoint, str(tmp_path / 'missing.png')])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no images'):
        _tool().main([CONFIG, checkpoint, str(tmp_path / 'empty')])
