# Copyright (c) mmaffseg contributors. All rights reserved.
"""Checkpoints through the real tools: bad files exit 2 naming the argument, strict testing,
resume fallback and bit-identical resume, payloads over http, and mmseg's own entry points
loading our checkpoints with nothing but ``custom_imports``."""
import os
import os.path as osp
import shutil

import pytest
import torch
from payloads import FilePayload, save_payload, serve_folder
from test_cli.test_tools_round_trip import QUICKSTART, _options
from tool_runner import REPO, one_error_line, run_tool, run_tools_in_one_process

pytestmark = pytest.mark.slow
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
ENV.pop('MMAFFSEG_TRUSTED_CHECKPOINTS', None)


def _tool(args: list, expect: int = 0, env: dict = ENV) -> str:
    return run_tool(args, expect=expect, env=env)


def _train(work: str, root: str, iters: int, *extra: str) -> str:
    return _tool(['tools/train.py', QUICKSTART, '--work-dir', work, *extra, '--cfg-options'] +
                 _options(root, iters) + ['train_cfg.val_interval=100'])


@pytest.fixture(scope='module')
def trained(tiny_synthetic_root, tmp_path_factory):
    """Work dir of a 2-iteration quick-start training (iter_1.pth, iter_2.pth)."""
    work = str(tmp_path_factory.mktemp('trained') / 'work')
    _train(work, tiny_synthetic_root, 2)
    return work


def _bad_checkpoints(good: str, folder) -> dict:
    """kind -> path of a missing, empty, truncated, random-bytes and another model's checkpoint."""
    paths = {kind: str(folder / f'{kind}.pth')
             for kind in ('missing', 'empty', 'truncated', 'random', 'other-model')}
    with open(good, 'rb') as f:
        data = f.read()
    open(paths['empty'], 'wb').close()
    with open(paths['truncated'], 'wb') as f:
        f.write(data[:len(data) // 2])
    with open(paths['random'], 'wb') as f:
        f.write(torch.randint(0, 256, (4096, ), generator=torch.Generator().manual_seed(0),
                              dtype=torch.uint8).numpy().tobytes())
    ckpt = torch.load(good, map_location='cpu')  # the quick-start's weights, a 5-class head
    for key in ('decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'):
        ckpt['state_dict'][key] = ckpt['state_dict'][key][:5]
    del ckpt['state_dict']['backbone.stem.0.weight']
    torch.save(ckpt, paths['other-model'])
    return paths


def test_tools_name_bad_checkpoints_and_exit_2(trained, tiny_synthetic_root, tmp_path):
    """tools/test.py CHECKPOINT, tools/train.py --resume / load_from, and a payload served
    over http as load_from: one line naming the argument and the file, exit status 2."""
    root = tiny_synthetic_root
    paths = _bad_checkpoints(osp.join(trained, 'iter_2.pth'), tmp_path)
    weights_only = str(tmp_path / 'weights_only.pth')
    ckpt = torch.load(osp.join(trained, 'iter_2.pth'), map_location='cpu')
    torch.save(dict(state_dict=ckpt['state_dict']), weights_only)

    served = tmp_path / 'served'
    served.mkdir()
    marker = str(tmp_path / 'marker')
    save_payload(str(served / 'payload.pth'), FilePayload(marker))

    def test_tool(path, *extra):
        return ['tools/test.py', QUICKSTART, path, '--work-dir', str(tmp_path / 'test'),
                *extra, '--cfg-options'] + _options(root, 2)

    def train_tool(*extra, options=()):
        return (['tools/train.py', QUICKSTART, '--work-dir', str(tmp_path / 'work'), *extra,
                 '--cfg-options'] + _options(root, 3) + list(options))

    kinds = list(paths)
    with serve_folder(str(served)) as base:
        url = f'{base}/payload.pth'
        invocations = [test_tool(paths[kind]) for kind in kinds] + [
            test_tool(paths['other-model'], '--non-strict'),
            train_tool('--resume', weights_only),
            train_tool('--resume', paths['random']),
            train_tool(options=[f'load_from={paths["empty"]}']),
            train_tool(options=[f'load_from={url}']),
        ]
        results = run_tools_in_one_process(invocations,
                                           env=dict(ENV, TORCH_HOME=str(tmp_path / 'th')))

    why = {'missing': 'does not exist', 'empty': 'is empty', 'truncated': 'is not a readable',
           'random': 'is not a readable', 'other-model': 'does not fit the EncoderDecoder'}
    for kind, (code, err) in zip(kinds, results):
        line = one_error_line(code, err, kind)
        assert f'error: CHECKPOINT: checkpoint {paths[kind]} {why[kind]}' in line, line
    line = one_error_line(*results[kinds.index('other-model')], 'other-model')
    assert 'decode_head.conv_seg.weight [5, ' in line and 'backbone.stem.0.weight' in line
    assert 'use --non-strict' in line
    code, err = results[len(kinds)]  # --non-strict: tested anyway
    assert code == 0, err[-3000:]

    results = results[len(kinds) + 1:]
    line = one_error_line(*results[0], '--resume weights-only')  # was KeyError: 'epoch'
    assert (f'error: --resume: checkpoint {weights_only} is not a training checkpoint'
            in line), line
    line = one_error_line(*results[1], '--resume random')
    assert f'error: --resume: checkpoint {paths["random"]} is not a readable' in line, line
    line = one_error_line(*results[2], 'load_from empty')
    assert f'error: load_from: checkpoint {paths["empty"]} is empty' in line, line
    line = one_error_line(*results[3], 'load_from http payload')
    assert f'error: load_from: checkpoint {url} was refused by safe loading' in line, line
    assert f'MMAFFSEG_TRUSTED_CHECKPOINTS={url}' in line
    assert not osp.exists(marker)


def _weights(path: str) -> dict:
    return torch.load(path, map_location='cpu')['state_dict']


def test_resume_after_kill_is_bit_identical(trained, tiny_synthetic_root, tmp_path):
    """2 iterations straight == 1 iteration, a kill while writing the next checkpoint's
    pointer (iter_2.pth gone, last_checkpoint empty), --resume to 2."""
    split = str(tmp_path / 'split')
    shutil.copytree(trained, split)
    os.remove(osp.join(split, 'iter_2.pth'))
    with open(osp.join(split, 'last_checkpoint'), 'w'):
        pass  # what a kill during mmengine's own write of the pointer leaves
    out = _train(split, tiny_synthetic_root, 2, '--resume')
    assert 'resuming from the newest readable checkpoint' in out, out[-3000:]
    assert 'resumed epoch: 0, iter: 1' in out, out[-3000:]
    assert 'restored the random generator states' in out
    a = _weights(osp.join(trained, 'iter_2.pth'))
    b = _weights(osp.join(split, 'iter_2.pth'))
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, differing[:5]


def _mmseg_tool(name: str) -> str:
    import mmseg
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', name)
    if not osp.isfile(path):
        pytest.skip(f'mmseg ships no {path}')
    return path


def test_mmseg_entry_points_load_our_checkpoint(trained, tiny_synthetic_root, tmp_path):
    """mmseg.apis.init_model, MMSegInferencer and mmseg's own tools/test.py (the one shipped in
    its wheel) load a quick-start checkpoint in a process where only the config's
    ``custom_imports`` imports mmaffseg."""
    ckpt = osp.join(trained, 'iter_2.pth')
    cfg = osp.join(REPO, QUICKSTART)
    argv = [_mmseg_tool('test.py'), cfg, ckpt, '--work-dir', str(tmp_path / 'mmseg_test'),
            '--cfg-options'] + _options(tiny_synthetic_root, 2)
    out = _tool(['-c', (
        'import runpy, sys, torch\n'
        'from mmseg.apis import init_model, MMSegInferencer\n'
        'assert "mmaffseg" not in sys.modules\n'
        f'model = init_model({cfg!r}, {ckpt!r}, device="cpu")\n'
        'assert "mmaffseg" in sys.modules  # through custom_imports\n'
        f'saved = torch.load({ckpt!r}, map_location="cpu")["state_dict"]\n'
        'assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())\n'
        f'inferencer = MMSegInferencer({cfg!r}, weights={ckpt!r}, device="cpu")\n'
        'state = inferencer.model.state_dict()\n'
        'assert all(torch.equal(v, saved[k]) for k, v in state.items())\n'
        'print("apis loaded", len(state))\n'
        'import glob\n'
        'from mmseg.apis import inference_model\n'
        f'img = sorted(glob.glob({tiny_synthetic_root!r} + "/leftImg8bit/val/*/*.png"))[0]\n'
        'pred = inference_model(model, img).pred_sem_seg.data\n'
        'assert pred.shape[-2:] == inferencer(img, return_datasamples=True)'
        '.pred_sem_seg.data.shape[-2:]\n'
        'print("apis inferred", tuple(pred.shape))\n'
        f'sys.argv = {argv!r}\n'
        'runpy.run_path(sys.argv[0], run_name="__main__")\n')])
    assert 'apis loaded' in out and 'apis inferred' in out
    assert 'Load checkpoint from' in out and 'mIoU' in out, out[-3000:]
