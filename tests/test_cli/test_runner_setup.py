# Copyright (c) mmaffseg contributors. All rights reserved.
import os.path as osp

import pytest
from mmengine.config import Config

from mmaffseg.cli import (
    build_runner,
    check_data_roots,
    load_config,
    prepare_test_cfg,
    prepare_train_cfg,
)
from mmaffseg.utils import CheckpointError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QUICKSTART = osp.join(REPO, 'configs', 'quickstart',
                      'deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py')


def test_quickstart_inherits_mmseg_bases():
    cfg = load_config(QUICKSTART)
    assert cfg.model.type == 'EncoderDecoder'  # from mmseg::_base_/models/deeplabv3plus_r50-d8
    assert cfg.model.decode_head.type == 'DepthwiseSeparableASPPHead'
    assert cfg.model.backbone.depth == 18 and cfg.model.pretrained is None
    assert cfg.train_dataloader.dataset.type == 'SyntheticCityscapesDataset'
    assert cfg.default_scope == 'mmseg'


def test_mmaffseg_scoped_base(tmp_path):
    child = tmp_path / 'child.py'
    child.write_text("_base_ = ['mmaffseg::quickstart/"
                     "deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py']\n"
                     "model = dict(decode_head=dict(num_classes=7))\n")
    cfg = Config.fromfile(str(child))
    assert cfg.model.decode_head.num_classes == 7
    assert cfg.model.backbone.depth == 18


def test_package_scoped_config_paths():
    cfg = load_config('mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py')
    assert cfg.model.decode_head.type == 'PSPHead'
    cfg = load_config('mmaffseg::quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py',
                      dict(model=dict(decode_head=dict(num_classes=5))))
    assert cfg.model.decode_head.num_classes == 5
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_config('mmseg::pspnet/no_such_config.py')


def test_missing_data_root_is_reported():
    cfg = load_config(QUICKSTART)
    cfg.val_dataloader.dataset.type = 'CityscapesDataset'
    cfg.val_dataloader.dataset.data_root = '/nonexistent/cityscapes'
    with pytest.raises(FileNotFoundError, match=r"val_dataloader.dataset.data_root = "
                       r"'/nonexistent/cityscapes' does not exist"):
        check_data_roots(cfg)
    check_data_roots(cfg, keys=('train', ))  # only the val loader is broken


def test_unknown_type_suggests_close_names(tmp_path):
    cfg = load_config(QUICKSTART)
    prepare_train_cfg(cfg, QUICKSTART, work_dir=str(tmp_path))
    cfg.model.decode_head.type = 'DepthwiseSeparableASPPHeadd'
    with pytest.raises(KeyError, match="DepthwiseSeparableASPPHeadd.*Did you mean "
                       "DepthwiseSeparableASPPHead"):
        build_runner(cfg)


def test_option_errors(tmp_path):
    cfg = load_config(QUICKSTART)
    # the tools name the argument (tests/test_cli/test_checkpoint_tools.py)
    with pytest.raises(CheckpointError, match='checkpoint .*nope.pth does not exist'):
        prepare_train_cfg(cfg, QUICKSTART, resume=str(tmp_path / 'nope.pth'))
    with pytest.raises(CheckpointError, match='checkpoint .*nope.pth does not exist'):
        prepare_test_cfg(cfg, QUICKSTART, str(tmp_path / 'nope.pth'))
    prepare_train_cfg(cfg, QUICKSTART, amp=True)  # mmseg's --amp, on any device
    assert cfg.optim_wrapper.type == 'AnyDeviceAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype in ('bfloat16', 'float16')
    assert cfg.work_dir.endswith('deeplabv3plus_r18-d16_quickstart_synthetic-128x256')


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_tools_name_a_missing_config(tool, tmp_path, monkeypatch, capsys):
    """A missing CONFIG was a raw FileNotFoundError traceback (found by
    tests/hostile_input_audit.py): exit 2 and one line naming it."""
    import runpy
    import sys
    missing = str(tmp_path / 'no_such_config.py')
    argv = [osp.join(REPO, 'tools', tool), missing] + (['x.pth'] if tool == 'test.py' else [])
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(argv[0], run_name='__main__')
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f'{tool}: error: CONFIG: config file {missing} does not exist' in err, err


def test_train_tool_names_a_missing_data_root(tmp_path, monkeypatch, capsys):
    """A missing data_root was a raw traceback from tools/train.py (and never checked for the
    synthetic dataset with auto_generate=False; found by hostile_input_audit.py)."""
    import runpy
    import sys
    missing = str(tmp_path / 'no_data')
    tool = osp.join(REPO, 'tools', 'train.py')
    monkeypatch.setattr(sys, 'argv', [tool, QUICKSTART, '--work-dir', str(tmp_path / 'w'),
                                      '--cfg-options', f'train_dataloader.dataset.data_root='
                                      f'{missing}', 'train_dataloader.dataset.auto_generate=False'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(tool, run_name='__main__')
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(
        f"train.py: error: train_dataloader.dataset.data_root = '{missing}' does not exist"), err


@pytest.mark.parametrize('tool, argument', [('train.py', '--work-dir'), ('test.py', '--out')])
def test_tools_check_output_folders_first(tool, argument, tmp_path, monkeypatch, capsys):
    """An output folder under a regular file was a raw traceback after the model was built
    (found by hostile_input_audit.py): exit 2 naming the argument, before any building."""
    import runpy
    import sys
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    folder = str(blocker / 'sub')
    tool_path = osp.join(REPO, 'tools', tool)
    ckpt = tmp_path / 'x.pth'
    import torch
    torch.save(dict(state_dict={}), str(ckpt))
    argv = [tool_path, QUICKSTART] + ([str(ckpt)] if tool == 'test.py' else [])
    argv += [argument, folder] + (['--work-dir', str(tmp_path / 'w')] if tool == 'test.py'
                                  else [])
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(tool_path, run_name='__main__')
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(
        f'{tool}: error: {argument}: the folder {folder} cannot be created or written'), err


def _zero_to_200(path: str) -> None:
    import cv2
    import numpy as np
    seg = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    cv2.imwrite(path, np.where(seg == 0, 200, seg).astype(np.uint8))


@pytest.mark.parametrize('case, workers, needle', [
    ('label 200', 1, 'has values [200]'),
    ('empty image', 0, 'the file is empty (0 bytes)'),
])
def test_train_tool_names_a_bad_data_file(case, workers, needle, tiny_synthetic_root, tmp_path):
    """A label value out of range or an empty image met while training was a raw traceback
    (from a dataloader worker too; found by hostile_input_audit.py): exit 2 and one line
    naming the file and the problem."""
    import glob
    import shutil

    from test_cli.test_tools_round_trip import _options
    from tool_runner import run_tool
    root = str(tmp_path / 'data')
    shutil.copytree(tiny_synthetic_root, root)
    if case == 'label 200':
        files = sorted(glob.glob(f'{root}/gtFine/train/*/*_labelTrainIds.png'))
        for path in files:
            _zero_to_200(path)
    else:
        files = sorted(glob.glob(f'{root}/leftImg8bit/train/*/*.png'))
        for path in files:
            open(path, 'wb').close()
    out = run_tool(['tools/train.py', QUICKSTART, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options'] + _options(root, 1) +
                   [f'{loader}.dataset.auto_generate=False'
                    for loader in ('train_dataloader', 'val_dataloader')] +
                   [f'train_dataloader.num_workers={workers}'], expect=2)
    last = out.strip().splitlines()[-1]
    assert last.startswith('train.py: error: '), out[-3000:]
    assert needle in last and any(osp.basename(f) in last for f in files), last
    assert 'Traceback' not in out, out[-3000:]


def test_tools_load_images_with_the_checked_loader():
    """Test pipelines keep mmcv's ``LoadImageFromFile`` and mmseg's ``LoadAnnotations``
    (MMSegInferencer finds them by name); the tools' runner swaps in the checked loaders, through
    dataset wrappers too."""
    from mmaffseg.cli import use_checked_image_loading
    load = dict(type='LoadImageFromFile', imdecode_backend='pillow')
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(type='A', pipeline=[dict(load), dict(type='LoadAnnotations')]),
            dict(type='RepeatDataset', dataset=dict(type='B', pipeline=[dict(load)]))])),
        test_dataloader=dict(dataset=dict(type='C', pipeline=[dict(load)]))))
    use_checked_image_loading(cfg)
    train = cfg.train_dataloader.dataset.datasets
    for pipeline in (train[0].pipeline, train[1].dataset.pipeline,
                     cfg.test_dataloader.dataset.pipeline):
        assert pipeline[0] == dict(type='LoadCheckedImageFromFile', imdecode_backend='pillow')
    assert train[0].pipeline[1].type == 'LoadCheckedAnnotations'
