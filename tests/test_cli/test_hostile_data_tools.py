# Copyright (c) mmaffseg contributors. All rights reserved.
"""tools/train.py on hostile data folders: one line naming the file, exit status 2; a data_root
with a space is used as given (docs/datasets.md, "Limits of the loaders")."""
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from hostile_data import add_symlink_loop, write_16bit_label, write_png_bomb
from test_cli.test_tools_round_trip import QUICKSTART, _options
from tool_runner import one_error_line, run_tools_in_one_process

pytestmark = pytest.mark.slow
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def _train_files(root: str, kind: str) -> list:
    folder = osp.join(root, 'leftImg8bit' if kind == 'img' else 'gtFine', 'train')
    suffix = '_leftImg8bit.png' if kind == 'img' else '_gtFine_labelTrainIds.png'
    return sorted(osp.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                  if f.endswith(suffix))


def test_train_py_names_hostile_data(tiny_synthetic_root, tmp_path):
    def copy(name: str) -> str:
        return shutil.copytree(tiny_synthetic_root, str(tmp_path / name))

    void = copy('all_void')
    for path in _train_files(void, 'ann'):
        cv2.imwrite(path, np.full((64, 128), 255, np.uint8))
    looped = copy('looped')
    link = add_symlink_loop(osp.dirname(_train_files(looped, 'img')[0]))
    bomb = copy('bomb')
    for path in _train_files(bomb, 'img'):
        write_png_bomb(path, 4000, 4000)  # 16 Mpx, above the default limit of 8.4 Mpx
    deep = copy('deep')
    for path in _train_files(deep, 'ann'):
        write_16bit_label(path, cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.uint16) + 256)
    spaced = str(tmp_path / 'my data' / 'synthetic')  # generated on first use

    def train(root: str, name: str) -> list:
        return (['tools/train.py', QUICKSTART, '--work-dir', str(tmp_path / 'work' / name),
                 '--cfg-options'] + _options(root, 1) + ['train_cfg.val_interval=100'])

    cases = {
        'every label all ignore': (train(void, 'void'), [
            'every one of the 6 label maps of the train_dataloader dataset',
            'holds only the ignore index 255', osp.join(void, 'gtFine', 'train')]),
        'symlink loop': (train(looped, 'looped'), [f'{link} -> ', 'loop of symbolic links']),
        'pixel bomb images': (train(bomb, 'bomb'), [
            osp.join(bomb, 'leftImg8bit', 'train'), 'has 16000000 pixels (4000x4000)',
            'MMAFFSEG_MAX_IMAGE_PIXELS']),
        '16-bit labels': (train(deep, 'deep'), [
            osp.join(deep, 'gtFine', 'train'), '16-bit label map holding values beyond 0..255']),
    }
    results = run_tools_in_one_process([argv for argv, _ in cases.values()] +
                                       [train(spaced, 'spaced')], env=ENV)
    for (what, (_, names)), (code, err) in zip(cases.items(), results):
        line = one_error_line(code, err, what)
        for name in names:
            assert name in line, f'{what}: {name!r} not in {line!r}'
    # --cfg-options data_root=".../my data/synthetic": generated and trained there, not in
    # ".../mydata/synthetic" (mmengine's parser deleted the space)
    code, err = results[-1]
    assert code == 0, err[-3000:]
    assert osp.isfile(osp.join(spaced, '.mmaffseg_synthetic_cityscapes.json'))
    assert not osp.exists(str(tmp_path / 'mydata'))
