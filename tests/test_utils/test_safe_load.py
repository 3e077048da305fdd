# Copyright (c) mmaffseg contributors. All rights reserved.
"""Safe checkpoint loading: real mmengine checkpoints load, real payloads do not run."""
import io
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from payloads import FilePayload, ToFilePayload, save_payload, serve_folder
from toy_runner import toy_runner

import mmaffseg  # noqa: F401  (installs the safe loaders)
from mmaffseg.utils import TRUSTED_ENV, CheckpointError
from mmaffseg.utils.safe_load import load_checkpoint_file, mmengine_safe_globals


@pytest.fixture(scope='module')
def mmengine_checkpoints(tmp_path_factory):
    """iter_2.pth and iter_4.pth of a tiny real mmengine training."""
    work = str(tmp_path_factory.mktemp('toy'))
    toy_runner(work, 4).train()
    return work


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """(folder served on 127.0.0.1, its URL); torch hub's cache in a temporary folder."""
    root = tmp_path / 'served'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    with serve_folder(str(root)) as url:
        yield root, url


def test_allow_list_covers_exactly_what_mmengine_writes(mmengine_checkpoints):
    path = osp.join(mmengine_checkpoints, 'iter_4.pth')
    installed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()  # measure what torch alone refuses
    try:
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    finally:
        torch.serialization.add_safe_globals(installed)
    names = {e[1] if isinstance(e, tuple) else f'{e.__module__}.{e.__qualname__}'
             for e in mmengine_safe_globals()}
    assert 'builtins.getattr' in unsafe and unsafe <= names, unsafe - names
    # plain torch.load (what mmseg's own code ends in) works once mmaffseg is imported
    ckpt = torch.load(path, map_location='cpu')
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert np.isfinite(buf.mean()) and buf.current() == buf.statistics('current')


def test_mmengine_checkpoint_resumes_and_loads_without_opt_in(mmengine_checkpoints, tmp_path,
                                                              monkeypatch):
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    runner = toy_runner(str(tmp_path / 'resumed'), 4, resume=True,
                        load_from=osp.join(mmengine_checkpoints, 'iter_2.pth'))
    runner.train()
    assert runner.iter == 4
    runner = toy_runner(str(tmp_path / 'loaded'), 2,
                        load_from=osp.join(mmengine_checkpoints, 'iter_4.pth'))
    runner.train()
    assert runner.iter == 2


def test_local_payload_is_refused_until_named(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    marker, path = str(tmp_path / 'marker'), str(tmp_path / 'old.pth')
    save_payload(path, FilePayload(marker))
    with pytest.raises(CheckpointError) as info:
        _load_checkpoint(path, map_location='cpu')
    assert not osp.exists(marker)
    msg = str(info.value)
    assert path in msg and 'GLOBAL io.open' in msg and 'could run code' in msg
    assert f'{TRUSTED_ENV}={path}' in msg
    # another file named in the variable does not trust this one
    monkeypatch.setenv(TRUSTED_ENV, str(tmp_path / 'other.pth'))
    with pytest.raises(CheckpointError):
        _load_checkpoint(path, map_location='cpu')
    assert not osp.exists(marker)
    # the documented opt-in unpickles it in full (proof that the payload is real)
    monkeypatch.setenv(TRUSTED_ENV, os.pathsep.join([str(tmp_path / 'other.pth'), path]))
    _load_checkpoint(path, map_location='cpu')
    assert osp.exists(marker)


def test_getattr_reaches_only_history_buffer_statistics(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    marker, path = str(tmp_path / 'marker'), str(tmp_path / 'tofile.pth')
    save_payload(path, ToFilePayload(marker))
    with pytest.raises(CheckpointError, match=r"getattr\(ndarray, 'tofile'\) is not allowed"):
        _load_checkpoint(path, map_location='cpu')
    assert not osp.exists(marker)
    monkeypatch.setenv(TRUSTED_ENV, path)
    _load_checkpoint(path, map_location='cpu')
    assert osp.exists(marker)


@pytest.mark.parametrize('scheme', ['http', 'open-mmlab', 'torchvision'])
def test_remote_payload_is_refused_until_named(scheme, http_root, tmp_path, monkeypatch):
    import mmengine.runner.checkpoint as mmengine_checkpoint
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    root, base = http_root
    marker = str(tmp_path / 'marker')
    save_payload(str(root / 'payload.pth'), FilePayload(marker))
    url = f'{base}/payload.pth'
    # the model-zoo schemes resolve names to URLs: point one name at the served payload
    monkeypatch.setattr(mmengine_checkpoint, 'get_external_models', lambda: dict(evil=url))
    monkeypatch.setattr(mmengine_checkpoint, 'get_torchvision_models', lambda: dict(evil=url))
    name = dict(http=url, torchvision='torchvision://evil').get(scheme, 'open-mmlab://evil')
    with pytest.raises(CheckpointError, match='refused by safe loading') as info:
        _load_checkpoint(name, map_location='cpu')
    assert not osp.exists(marker)
    assert f'{TRUSTED_ENV}={url}' in str(info.value)
    monkeypatch.setenv(TRUSTED_ENV, url)
    _load_checkpoint(name, map_location='cpu')
    assert osp.exists(marker)


def test_remote_mmengine_checkpoint_loads(mmengine_checkpoints, http_root, monkeypatch):
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    root, base = http_root
    with open(osp.join(mmengine_checkpoints, 'iter_4.pth'), 'rb') as src:
        (root / 'iter_4.pth').write_bytes(src.read())
    ckpt = _load_checkpoint(f'{base}/iter_4.pth', map_location='cpu')
    assert ckpt['meta']['iter'] == 4


def test_every_mmengine_scheme_has_a_safe_loader():
    from mmaffseg.utils.checkpoint import SAFE_LOADERS
    safe = set(SAFE_LOADERS.values())
    for name in ('x.pth', 'http://h/x.pth', 'https://h/x.pth', 'torchvision://r',
                 'modelzoo://r', 'open-mmlab://r', 'openmmlab://r', 'mmcls://r', 's3://b/x.pth',
                 'petrel://b/x.pth'):
        assert CheckpointLoader._get_checkpoint_loader(name) in safe, name


@pytest.mark.parametrize('content,why', [(b'', 'is empty'),
                                         (b'\x93NUMPY garbage' * 40, 'not a readable'),
                                         (None, 'not a readable')])
def test_unreadable_files_are_named(content, why, mmengine_checkpoints, tmp_path):
    path = str(tmp_path / 'bad.pth')
    if content is None:  # truncated real checkpoint
        with open(osp.join(mmengine_checkpoints, 'iter_4.pth'), 'rb') as f:
            content = f.read()[:300]
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(CheckpointError, match=why) as info:
        _load_checkpoint(path, map_location='cpu')
    assert path in str(info.value)


def test_model_converters_read_mmengine_checkpoints_without_trust(mmengine_checkpoints,
                                                                  tmp_path):
    from converters.checkpoint_conversion import converter_main
    dst = str(tmp_path / 'converted.pth')
    converter_main(lambda state: state, 'identity',
                   argv=[osp.join(mmengine_checkpoints, 'iter_4.pth'), dst])
    assert set(torch.load(dst, weights_only=True)['state_dict']) == {'linear.weight',
                                                                     'linear.bias'}


def test_bit_flip_in_tensor_data_is_named_not_loaded(tmp_path):
    """torch.load ignores the zip's CRC-32s: a flipped byte in a weight loaded silently as a
    different weight (found by tests/hostile_input_audit.py)."""
    path = str(tmp_path / 'flipped.pth')
    weight = torch.arange(4096, dtype=torch.float32)
    torch.save(dict(state_dict=dict(w=weight)), path)
    data = bytearray(open(path, 'rb').read())
    offset = bytes(data).find(weight.numpy().tobytes())
    assert offset > 0
    data[offset + 4 * 1000] ^= 0x40  # one bit of weight 1000
    open(path, 'wb').write(bytes(data))
    assert not torch.equal(torch.load(path)['state_dict']['w'], weight)  # torch alone: silent
    with pytest.raises(CheckpointError, match=r'flipped.pth is corrupt: the CRC-32 of its '
                       r'member flipped/data/0 does not match'):
        _load_checkpoint(path, map_location='cpu')
    with open(path, 'rb') as f:  # downloaded bytes are checked alike
        with pytest.raises(CheckpointError, match='is corrupt'):
            load_checkpoint_file(io.BytesIO(f.read()), source='http://x/flipped.pth')


def test_checkpoints_without_crcs_still_load(tmp_path):
    path = str(tmp_path / 'nocrc.pth')
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(dict(state_dict=dict(w=torch.ones(3))), path)
    finally:
        torch.serialization.set_crc32_options(True)
    assert torch.equal(_load_checkpoint(path, map_location='cpu')['state_dict']['w'],
                       torch.ones(3))
