# Copyright (c) mmaffseg contributors. All rights reserved.
"""Hostile checkpoints the weights-only allow-list let through: a poisoned download cache,
numpy state that crashes the process, and files or arrays far larger once loaded than on disk.

Every payload is built here (tests/payloads.py); http cases use a local server on 127.0.0.1.
"""
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint
from payloads import (
    FilePayload,
    ObjectPointerArray,
    ZeroStrideArray,
    save_payload,
    save_zip_bomb,
    serve_folder,
    zero_stride_tensor,
)

import mmaffseg  # noqa: F401  (installs the safe loaders)
from mmaffseg.utils import TRUSTED_ENV, CheckpointError
from mmaffseg.utils.checkpoint_archive import MAX_BYTES_ENV, MAX_INFLATION_ENV
from mmaffseg.utils.safe_load import file_sha256, load_checkpoint_file


@pytest.fixture
def served(tmp_path, monkeypatch):
    """(folder served on 127.0.0.1, its URL, torch hub's cache folder), nothing trusted."""
    root = tmp_path / 'served'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    with serve_folder(str(root)) as url:
        yield root, url, tmp_path / 'torch_home' / 'hub' / 'checkpoints'


def _save_weights(path, value: float) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(dict(state_dict=dict(w=torch.full((2, ), value)), meta=dict(value=value)), path)


def _cached(cache) -> list:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# ------------------------------------------------------------------ 1. the download cache


def test_refused_download_is_not_kept_and_cannot_stand_in_for_a_trusted_url(
        served, tmp_path, monkeypatch):
    """The cache named a download by the URL's file name only: a refused b/model.pth stayed
    as model.pth and was then unpickled in full as the trusted a/model.pth (no request made)."""
    root, base, cache = served
    marker = str(tmp_path / 'marker')
    _save_weights(str(root / 'a' / 'model.pth'), 1.0)
    os.makedirs(root / 'b')
    save_payload(str(root / 'b' / 'model.pth'), FilePayload(marker))
    with pytest.raises(CheckpointError, match='refused by safe loading'):
        _load_checkpoint(f'{base}/b/model.pth', map_location='cpu')
    assert _cached(cache) == []  # the refused download is gone
    monkeypatch.setenv(TRUSTED_ENV, f'{base}/a/model.pth')
    ckpt = _load_checkpoint(f'{base}/a/model.pth', map_location='cpu')
    assert not osp.exists(marker)
    assert ckpt['meta']['value'] == 1.0


def test_cache_is_keyed_by_the_whole_url(served):
    """Two URLs ending in the same file name: each loads its own weights."""
    root, base, cache = served
    _save_weights(str(root / 'a' / 'model.pth'), 1.0)
    _save_weights(str(root / 'b' / 'model.pth'), 2.0)
    assert _load_checkpoint(f'{base}/b/model.pth', map_location='cpu')['meta']['value'] == 2.0
    assert _load_checkpoint(f'{base}/a/model.pth', map_location='cpu')['meta']['value'] == 1.0
    assert _load_checkpoint(f'{base}/b/model.pth', map_location='cpu')['meta']['value'] == 2.0
    assert len([n for n in _cached(cache) if n.endswith('model.pth')]) == 2


def test_trusted_url_trusts_only_the_bytes_fetched_for_it(served, tmp_path, monkeypatch):
    """A cached file replaced after its download is fetched again, not unpickled in full."""
    root, base, cache = served
    marker = str(tmp_path / 'marker')
    url = f'{base}/a/model.pth'
    _save_weights(str(root / 'a' / 'model.pth'), 1.0)
    monkeypatch.setenv(TRUSTED_ENV, url)
    assert _load_checkpoint(url, map_location='cpu')['meta']['value'] == 1.0
    (cached, ) = [cache / n for n in _cached(cache) if n.endswith('model.pth')]
    save_payload(str(cached), FilePayload(marker))  # the cache file swapped
    assert _load_checkpoint(url, map_location='cpu')['meta']['value'] == 1.0
    assert not osp.exists(marker)


def test_content_pin_trusts_exactly_that_content(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    marker, path = str(tmp_path / 'marker'), str(tmp_path / 'old.pth')
    save_payload(path, FilePayload(marker))
    digest = file_sha256(path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(path)
    assert f'{TRUSTED_ENV}=sha256:{digest}' in str(info.value)  # the pin to use, in the error
    monkeypatch.setenv(TRUSTED_ENV, 'sha256:' + '0' * 64)
    with pytest.raises(CheckpointError, match='refused by safe loading'):
        load_checkpoint_file(path)
    monkeypatch.setenv(TRUSTED_ENV, 'sha256:abc')
    with pytest.raises(CheckpointError, match=f"{TRUSTED_ENV} holds 'sha256:abc', which is no "
                       'content pin'):
        load_checkpoint_file(path)
    assert not osp.exists(marker)
    monkeypatch.setenv(TRUSTED_ENV, f'{tmp_path / "other.pth"}:sha256:{digest.upper()}')
    load_checkpoint_file(path)
    assert osp.exists(marker)  # unpickled in full: the payload was real


# ------------------------------------------------------------------ 2. numpy state


_CRASH_SCRIPT = """
import copy, os, pickle, sys
import numpy as np
import torch
import mmaffseg
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import _load_checkpoint
from mmaffseg.utils import CheckpointError, load_checkpoint_file

def resume(path):  # what tools/train.py --resume does: load, copy the message hub's info
    ckpt = _load_checkpoint(path, map_location='cpu')
    MessageHub.get_instance('resume').load_state_dict(ckpt['message_hub'])

def plain_torch_load(path):  # mmaffseg's allow-list is torch's: torch >= 2.6's default too
    copy.deepcopy(torch.load(path))

def numpy_allow_listed(path):  # numpy's classes allow-listed by someone else
    torch.serialization.add_safe_globals([np.ndarray, np.dtype, type(np.dtype('f8'))])
    copy.deepcopy(load_checkpoint_file(path))

path, folder = sys.argv[1:]
for load in (resume, plain_torch_load, numpy_allow_listed):
    pid = os.fork()  # one process per way of loading: a crash ends only that one
    if pid == 0:
        out = os.open(os.path.join(folder, load.__name__), os.O_WRONLY | os.O_CREAT)
        os.dup2(out, 1)
        os.dup2(out, 2)
        try:
            load(path)
        except (CheckpointError, pickle.UnpicklingError) as e:
            print(e, flush=True)
            os._exit(3)
        print('loaded', flush=True)
        os._exit(0)
    print(load.__name__, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.fixture(scope='module')
def object_pointer_loads(tmp_path_factory):
    """{way of loading: (exit status, output)} for a checkpoint holding an
    :class:`ObjectPointerArray` in its message hub, each loaded in a process of its own."""
    folder = tmp_path_factory.mktemp('object_pointer')
    path = str(folder / 'crafted.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(1)), meta=dict(iter=1, epoch=0),
                    message_hub=dict(log_scalars={}, runtime_info=dict(x=ObjectPointerArray()),
                                     resumed_keys=dict(x=True))), path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop(TRUSTED_ENV, None)
    proc = subprocess.run([sys.executable, '-c', _CRASH_SCRIPT, path, str(folder)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    codes = dict(line.split() for line in proc.stdout.splitlines())
    return {load: (int(code), (folder / load).read_text()) for load, code in codes.items()}, path


@pytest.mark.parametrize('load', ['resume', 'plain_torch_load', 'numpy_allow_listed'])
def test_object_pointer_array_is_refused_not_a_crash(load, object_pointer_loads):
    """A float64 dtype given an object field by its pickled state: resuming copied the array
    and crashed with SIGSEGV (a crash here is exit status -11, not a crash of pytest)."""
    results, path = object_pointer_loads
    code, out = results[load]
    assert code == 3, f'exit {code}: {out[-2000:]}'
    assert 'only plain numeric dtypes' in out
    if load != 'plain_torch_load':
        assert f'checkpoint {path} was refused by safe loading' in out


# ------------------------------------------------------------------ 3. resource bombs


@pytest.mark.parametrize('payload,needle', [
    (ZeroStrideArray, r'constructing numpy\.ndarray\(\(268435456,\)'),
    (zero_stride_tensor, r'a tensor at meta\.note declares 268435456 torch\.float64 elements '
     r'\(2\.0 GiB, shape \[268435456\], strides \[0\]\) over 8 bytes of data'),
])
def test_zero_stride_arrays_are_refused(payload, needle, tmp_path, monkeypatch):
    """8 bytes in the file declared as 2**28 float64 elements: 2 GiB once resumed (copied)."""
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    path = str(tmp_path / 'strided.pth')
    save_payload(path, payload())
    with pytest.raises(CheckpointError, match=needle) as info:
        _load_checkpoint(path, map_location='cpu')
    assert str(info.value).startswith(f'checkpoint {path} was refused by safe loading')


def test_zip_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    path = str(tmp_path / 'bomb.pth')
    save_zip_bomb(path)  # 64 MiB of pickle in about 65 KiB
    # reaching torch.load means the archive is being decompressed
    monkeypatch.setattr(torch, 'load', lambda *a, **k: pytest.fail('torch.load was called'))
    with pytest.raises(CheckpointError, match=r'declares 64\.0 MiB of content, \d+ times its '
                       rf'.* on disk .* raise the limit with {MAX_INFLATION_ENV}') as info:
        _load_checkpoint(path, map_location='cpu')
    assert path in str(info.value)


def test_size_limits_are_configurable(tmp_path, monkeypatch):
    path = str(tmp_path / 'weights.pth')
    torch.save(dict(state_dict=dict(w=torch.zeros(4096))), path)  # 16 KiB of weights
    assert load_checkpoint_file(path)['state_dict']['w'].numel() == 4096
    monkeypatch.setenv(MAX_BYTES_ENV, '8192')
    with pytest.raises(CheckpointError, match=rf'{path} declares .* more than the 8\.0 KiB '
                       rf'allowed.*{MAX_BYTES_ENV}'):
        load_checkpoint_file(path)
    monkeypatch.setenv(MAX_BYTES_ENV, 'lots')
    with pytest.raises(CheckpointError, match=f"{MAX_BYTES_ENV}='lots' is not a positive"):
        load_checkpoint_file(path)
    monkeypatch.delenv(MAX_BYTES_ENV)
    bomb = str(tmp_path / 'bomb.pth')
    save_zip_bomb(bomb, inflated=1 << 20)
    monkeypatch.setenv(MAX_INFLATION_ENV, '1000')
    assert load_checkpoint_file(bomb)['state_dict']['w'].numel() == 1


# ------------------------------------------------------------------ what still loads


def test_numpy_content_loads_as_plain_arrays(tmp_path, monkeypatch):
    """What mmengine and torch save keeps loading, as plain numpy objects, through mmaffseg's
    loader and through plain torch.load (whose arrays pickle back as plain arrays)."""
    from mmengine.logging import HistoryBuffer
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    rng = np.random.default_rng(0)
    arrays = {f'{code}{order}': rng.integers(0, 100, (3, 2)).astype(np.dtype(order + code))
              for code in ('f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'b1')
              for order in '<>'}
    arrays['fortran'] = np.asfortranarray(rng.random((3, 4)))
    arrays['empty'] = np.zeros((0, 3))
    scalars = dict(f=np.float64(2.5), i=np.int64(-3), b=np.bool_(True), h=np.float16(0.5))
    unused = HistoryBuffer()  # empty histories
    path = str(tmp_path / 'numpy.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(1)), meta=dict(arrays=arrays, **scalars),
                    message_hub=dict(buffer=unused)), path)
    for loaded in (load_checkpoint_file(path), torch.load(path)):
        for key, value in arrays.items():
            got = loaded['meta']['arrays'][key]
            assert isinstance(got, np.ndarray) and got.shape == value.shape, key
            assert np.array_equal(got, value) and got.dtype.kind == value.dtype.kind, key
        for key, value in scalars.items():
            assert type(loaded['meta'][key]) is type(value) and loaded['meta'][key] == value
        assert loaded['message_hub']['buffer']._log_history.size == 0
        assert b'LoadedArray' not in pickle.dumps(loaded)
    ours = load_checkpoint_file(path)
    assert all(type(a) is np.ndarray for a in ours['meta']['arrays'].values())
