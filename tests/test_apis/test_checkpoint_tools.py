# Copyright (c) mmaffseg contributors. All rights reserved.
"""Checkpoints through the real tools: bad files exit 2 naming the argument, strict testing,
resume fallback and bit-identical resume, payloads over http, and mmseg's own entry points
loading our checkpoints with nothing but ``custom_imports``."""
import functools
import http.server
import os
import os.path as osp
import shutil
import subprocess
import sys
import threading

import pytest
import torch
from test_apis.test_tools_round_trip import QUICKSTART, REPO, _options

pytestmark = pytest.mark.slow
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
ENV.pop('MMAFFSEG_TRUSTED_CHECKPOINTS', None)


def _tool(args: list, expect: int = 0, env: dict = ENV) -> str:
    proc = subprocess.run([sys.executable] + args, cwd=REPO, capture_output=True, text=True,
                          timeout=900, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == expect, out[-4000:]
    return out


def _train(work: str, root: str, iters: int, *extra: str) -> str:
    return _tool(['tools/train.py', QUICKSTART, '--work-dir', work, *extra, '--cfg-options'] +
                 _options(root, iters) + ['train_cfg.val_interval=100'])


@pytest.fixture(scope='module')
def trained(tiny_synthetic_root, tmp_path_factory):
    """Work dir of a 2-iteration quick-start training (iter_1.pth, iter_2.pth)."""
    work = str(tmp_path_factory.mktemp('trained') / 'work')
    _train(work, tiny_synthetic_root, 2)
    return work


def _test_args(root: str, checkpoint: str, tmp_path) -> list:
    return ['tools/test.py', QUICKSTART, checkpoint, '--work-dir', str(tmp_path / 'test'),
            '--cfg-options'] + _options(root, 2)


def _last_error_line(out: str) -> str:
    lines = [line for line in out.splitlines() if ': error: ' in line]
    assert lines, out[-3000:]
    assert 'Traceback' not in out, out[-3000:]
    return lines[-1]


@pytest.mark.parametrize('kind', ['missing', 'empty', 'truncated', 'random', 'other-model'])
def test_test_tool_names_bad_checkpoint_and_exits_2(kind, trained, tiny_synthetic_root,
                                                    tmp_path):
    path = str(tmp_path / f'{kind}.pth')
    good = osp.join(trained, 'iter_2.pth')
    if kind == 'empty':
        open(path, 'wb').close()
    elif kind == 'truncated':
        with open(good, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    elif kind == 'random':
        with open(path, 'wb') as f:
            f.write(torch.randint(0, 256, (4096, ), generator=torch.Generator().manual_seed(0),
                                  dtype=torch.uint8).numpy().tobytes())
    elif kind == 'other-model':  # the quick-start's weights with a 5-class head
        ckpt = torch.load(good, map_location='cpu')
        for key in ('decode_head.conv_seg.weight', 'decode_head.conv_seg.bias'):
            ckpt['state_dict'][key] = ckpt['state_dict'][key][:5]
        del ckpt['state_dict']['backbone.stem.0.weight']
        torch.save(ckpt, path)
    line = _last_error_line(_tool(_test_args(tiny_synthetic_root, path, tmp_path), expect=2))
    assert f'error: CHECKPOINT: checkpoint {path} ' in line, line
    why = {'missing': 'does not exist', 'empty': 'is empty', 'truncated': 'not a readable',
           'random': 'not a readable', 'other-model': 'does not fit'}[kind]
    assert why in line, line
    if kind == 'other-model':
        assert 'decode_head.conv_seg.weight [5, ' in line and 'backbone.stem.0.weight' in line
        assert '--non-strict' in line
        out = _tool(_test_args(tiny_synthetic_root, path, tmp_path) + ['--non-strict'])
        assert 'mIoU' in out


def test_train_tool_names_bad_checkpoints_and_exits_2(trained, tiny_synthetic_root, tmp_path):
    weights_only = str(tmp_path / 'weights_only.pth')
    ckpt = torch.load(osp.join(trained, 'iter_2.pth'), map_location='cpu')
    torch.save(dict(state_dict=ckpt['state_dict']), weights_only)
    work = str(tmp_path / 'work')
    # --resume from a checkpoint that training did not write (was KeyError: 'epoch')
    line = _last_error_line(_tool(['tools/train.py', QUICKSTART, '--work-dir', work, '--resume',
                                   weights_only, '--cfg-options'] +
                                  _options(tiny_synthetic_root, 3), expect=2))
    assert f'error: --resume: checkpoint {weights_only} is not a training checkpoint' in line
    # an empty load_from
    empty = str(tmp_path / 'empty.pth')
    open(empty, 'wb').close()
    line = _last_error_line(_tool(['tools/train.py', QUICKSTART, '--work-dir', work,
                                   '--cfg-options', f'load_from={empty}'] +
                                  _options(tiny_synthetic_root, 3), expect=2))
    assert f'error: load_from: checkpoint {empty} is empty' in line


def test_load_from_http_payload_is_refused(tiny_synthetic_root, tmp_path):
    marker = str(tmp_path / 'marker')
    root = tmp_path / 'served'
    root.mkdir()
    from test_utils.test_safe_load import FilePayload, _save_payload
    _save_payload(str(root / 'payload.pth'), FilePayload(marker))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f'http://127.0.0.1:{server.server_address[1]}/payload.pth'
    env = dict(ENV, TORCH_HOME=str(tmp_path / 'torch_home'))
    try:
        out = _tool(['tools/train.py', QUICKSTART, '--work-dir', str(tmp_path / 'work'),
                     '--cfg-options', f'load_from={url}'] + _options(tiny_synthetic_root, 1),
                    expect=2, env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert not osp.exists(marker)
    line = _last_error_line(out)
    assert f'error: load_from: checkpoint {url} was refused by safe loading' in line
    assert f'MMAFFSEG_TRUSTED_CHECKPOINTS={url}' in line


def _weights(path: str) -> dict:
    return torch.load(path, map_location='cpu')['state_dict']


def test_resume_after_kill_is_bit_identical(trained, tiny_synthetic_root, tmp_path):
    """4 iterations straight == 2 iterations, last_checkpoint emptied (a kill), --resume to 4."""
    straight = str(tmp_path / 'straight')
    _train(straight, tiny_synthetic_root, 4)
    split = str(tmp_path / 'split')
    shutil.copytree(trained, split)
    with open(osp.join(split, 'last_checkpoint'), 'w'):
        pass  # what a kill during mmengine's write of the pointer left
    out = _train(split, tiny_synthetic_root, 4, '--resume')
    assert 'resuming from the newest readable checkpoint' in out and 'iter: 2' in out, out[-3000:]
    assert 'restored the random generator states' in out
    a = _weights(osp.join(straight, 'iter_4.pth'))
    b = _weights(osp.join(split, 'iter_4.pth'))
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, differing[:5]


def _mmseg_tool(name: str) -> str:
    import mmseg
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', name)
    if not osp.isfile(path):
        pytest.skip(f'mmseg ships no {path}')
    return path


def test_mmseg_test_tool_loads_our_checkpoint(trained, tiny_synthetic_root, tmp_path):
    """mmseg's own tools/test.py: the config's custom_imports is all that imports mmaffseg."""
    out = _tool([_mmseg_tool('test.py'), QUICKSTART, osp.join(trained, 'iter_2.pth'),
                 '--work-dir', str(tmp_path / 'mmseg_test'), '--cfg-options'] +
                _options(tiny_synthetic_root, 2))
    assert 'mIoU' in out and 'Load checkpoint from' in out


def _python(code: str) -> str:
    return _tool(['-c', code])


def test_mmseg_apis_load_our_checkpoint(trained, tiny_synthetic_root):
    """init_model and MMSegInferencer in a process that never imports mmaffseg itself."""
    ckpt = osp.join(trained, 'iter_2.pth')
    cfg = osp.join(REPO, QUICKSTART)
    out = _python(
        'import sys, torch\n'
        'from mmseg.apis import init_model, MMSegInferencer\n'
        f'model = init_model({cfg!r}, {ckpt!r}, device="cpu")\n'
        'assert "mmaffseg" in sys.modules\n'
        f'saved = torch.load({ckpt!r}, map_location="cpu")["state_dict"]\n'
        'assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())\n'
        f'inferencer = MMSegInferencer({cfg!r}, weights={ckpt!r}, device="cpu")\n'
        'state = inferencer.model.state_dict()\n'
        'assert all(torch.equal(v, saved[k]) for k, v in state.items())\n'
        'print("loaded", len(state))\n')
    assert 'loaded' in out
