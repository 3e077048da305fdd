# Copyright (c) mmaffseg contributors. All rights reserved.
"""Red-team round on the checkpoint loader and PSA's label reader: one test per finding.

Every payload is built here in ``tmp_path`` (hand-written protocol-2 pickles, with the opcodes
torch's weights-only unpickler reads, where ``torch.save`` cannot write them); the only network
is a server on 127.0.0.1; cases that crash the process without the fix run in a subprocess.
"""
import functools
import http.server
import io
import os
import os.path as osp
import pickle
import shutil
import struct
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest
import torch
import torch._utils

import mmaffseg  # noqa: F401  (installs the safe loaders)
from mmaffseg.datasets.psa_cls_labels import UntrustedPickleError, read_psa_cls_labels
from mmaffseg.utils import TRUSTED_ENV, CheckpointError, safe_load
from mmaffseg.utils import checkpoint as checkpoint_module
from mmaffseg.utils.checkpoint import load_from_http, load_model_weights
from mmaffseg.utils.safe_load import file_sha256, load_checkpoint_file

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


# --- payload builders ----------------------------------------------------------------------
class _Call:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _global(module: str, name: str) -> bytes:
    return b'c' + f'{module}\n{name}\n'.encode()


def _text(text: str) -> bytes:
    data = text.encode('utf-8')
    return b'X' + struct.pack('<I', len(data)) + data


def _bytes(data: bytes) -> bytes:
    """bytes as pickle protocol 2 writes them: _codecs.encode(latin-1 text, 'latin1')."""
    return _global('_codecs', 'encode') + b'(' + _text(data.decode('latin-1')) + _text(
        'latin1') + b'tR'


def _array_state(shape, code: str, data: bytes) -> bytes:
    dtype = _global('numpy', 'dtype') + b'(' + _text(code) + b'\x89\x88tR'
    dims = b'(' + b''.join(b'J' + struct.pack('<i', n) for n in shape) + b't'
    return b'(K\x01' + dims + dtype + b'\x89' + _bytes(data) + b't'


def _dict(*items) -> bytes:
    return b'}(' + b''.join(_text(k) + v for k, v in items) + b'u'


def _torch_zip(pickle_bytes: bytes, path: str, extra: bytes = b'') -> str:
    """A torch zip checkpoint whose data.pkl is ``pickle_bytes`` (the other records as
    torch.save writes them); ``extra`` is a member's extra field (written as is)."""
    template = io.BytesIO()
    torch.save({}, template)
    template.seek(0)
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, 'w') as out:
        for info in src.infolist():
            record = info.filename.split('/', 1)[1]
            if record == 'data.pkl':
                member = zipfile.ZipInfo('archive/data.pkl')
                member.compress_type = zipfile.ZIP_DEFLATED
                member.extra = extra
                out.writestr(member, pickle_bytes)
            else:
                out.writestr(f'archive/{record}', src.read(info))
    return path


class _MakeDir:
    """Pickles as ``os.mkdir(path)``: a visible trace of code run from a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path, )


# --- 1. numpy array state set twice: use after free --------------------------------------
def _set_twice_pickle(n: int) -> bytes:
    memo = struct.pack('<I', 999999)
    array = (_global('numpy.core.multiarray', '_reconstruct') + b'(' +
             _global('numpy', 'ndarray') + b'K\x00\x85' + _bytes(b'b') + b'tR' + b'r' + memo)
    first = array + _array_state((n, ), 'f4', b'\x01' * (4 * n)) + b'b'
    tensor = (_global('torch._utils', '_rebuild_device_tensor_from_numpy') + b'(' + first +
              _global('torch', 'float32') + _text('cpu') + b'\x89tR')
    second = b'j' + memo + _array_state((1, ), 'f4', b'\0' * 4) + b'b'
    return b'\x80\x02' + _dict(('state_dict', _dict(('w', tensor), ('junk', second)))) + b'.'


def test_numpy_array_state_set_twice_is_refused(tmp_path):
    """A tensor made from an array between two states of it points into freed memory (with
    40 MiB, reading it was a SIGSEGV); a second state is refused."""
    path = _torch_zip(_set_twice_pickle(16), str(tmp_path / 'twice.pth'))
    with pytest.raises(CheckpointError, match="state twice"):
        load_checkpoint_file(path)


# --- 2. builtins.bytearray(n) on torch's own allow-list -----------------------------------
def test_bytearray_of_a_size_is_refused_and_bytearrays_of_data_load(tmp_path):
    bomb = str(tmp_path / 'bytearray.pth')
    torch.save({'meta': {'x': _Call(bytearray, 1 << 24)}}, bomb)  # 16 MiB from 1 KB
    with pytest.raises(CheckpointError, match=r'bytearray\(int\) is not allowed'):
        load_checkpoint_file(bomb)
    fine = str(tmp_path / 'data.pth')
    torch.save({'b': bytearray(b'\x00\xffabc')}, fine)
    assert load_checkpoint_file(fine) == {'b': bytearray(b'\x00\xffabc')}


# --- 3. tensors and storages the pickle builds itself -------------------------------------
def _legacy_uninitialised(path: str, n: int) -> str:
    """Legacy format: a storage declaring ``n`` floats whose data is never read."""
    storage = object()

    class Rebuild:

        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (storage, 0, (n, ), (1, ), False, {})

    class Pickler(pickle.Pickler):

        def persistent_id(self, obj):
            return ('storage', torch.FloatStorage, '0', 'cpu', n, None) if obj is storage else None

    with open(path, 'wb') as f:
        for header in (0x1950a86a20f9469cfc6c, 1001,
                       dict(protocol_version=1001, little_endian=True,
                            type_sizes=dict(short=2, int=4, long=4))):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump({'state_dict': {'w': Rebuild()}})
        pickle.dump([], f, protocol=2)
    return path


@pytest.mark.parametrize('kind', ['FloatTensor', 'Tensor', 'UntypedStorage', 'legacy', 'meta'])
def test_tensors_without_data_from_the_file_are_refused(tmp_path, kind):
    """1-2 KB files declaring 2**24 elements (uninitialised memory, allocated on copy)."""
    n = 1 << 24
    path = str(tmp_path / f'{kind}.pth')
    if kind == 'legacy':
        _legacy_uninitialised(path, n)
    else:
        value = (_Call(torch._utils._rebuild_meta_tensor_no_storage, torch.float32, (n, ),
                       (1, ), False) if kind == 'meta' else _Call(getattr(torch, kind), n))
        torch.save({'state_dict': {'w': value}}, path)
    with pytest.raises(CheckpointError, match='without data from the file|meta device') as e:
        load_checkpoint_file(path)
    assert path in str(e.value) and 'state_dict.w' in str(e.value)


def test_shared_non_contiguous_legacy_and_half_checkpoints_still_load(tmp_path):
    base = torch.arange(24.).reshape(4, 6)
    state = {'t': base.t(), 'row': base[1], 'half': base.half(), 'empty': torch.zeros(0, 3),
             'history': np.arange(5, dtype=np.float64), 'step': np.int64(3)}
    for legacy in (False, True):
        path = str(tmp_path / f'ok{legacy}.pth')
        torch.save({'state_dict': state}, path, _use_new_zipfile_serialization=not legacy)
        out = load_checkpoint_file(path)['state_dict']
        assert torch.equal(out['t'], base.t()) and torch.equal(out['half'], base.half())
        assert out['step'] == 3 and out['history'].tolist() == [0., 1., 2., 3., 4.]


# --- 4. a zip bomb whose directory only torch can read ------------------------------------
def test_zip_bomb_behind_a_corrupt_extra_field_is_refused_before_inflating(tmp_path):
    """Python's zipfile rejects the extra field (so the size check gave up); torch's reader
    ignores it and inflated data.pkl in full (1 MB -> 1 GiB: 3.4 GB, 6 s)."""
    n = 8 << 20
    pkl = b'\x80\x02' + _text('\0' * n) + b'.'  # a valid pickle: an 8 MiB str
    path = _torch_zip(pkl, str(tmp_path / 'bomb.pth'), extra=b'\xfe\xca\x10\x00')
    assert os.path.getsize(path) < n / 100
    with pytest.raises(CheckpointError, match='zip directory cannot be read') as e:
        load_checkpoint_file(path)
    assert 'refused before decompressing' in str(e.value)


# --- 5. trust checked on one file, another one loaded (TOCTOU) ----------------------------
def _good_and_evil(tmp_path):
    marker = str(tmp_path / 'MARKER')
    good, evil = str(tmp_path / 'good.pth'), str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, good)
    torch.save({'state_dict': {'w': torch.ones(2)}, 'x': _MakeDir(marker)}, evil)
    return good, evil, marker


def test_sha256_pin_binds_the_bytes_loaded_not_the_path(tmp_path, monkeypatch):
    """The file is replaced right after its hash matched the pin (an attacker with write access
    to the folder, racing the loader: 5 loads were enough)."""
    good, evil, marker = _good_and_evil(tmp_path)
    target = str(tmp_path / 'model.pth')
    shutil.copy(good, target)
    monkeypatch.setenv(TRUSTED_ENV, f'sha256:{file_sha256(good)}')
    hash_then_swap = safe_load.file_sha256

    def swapping(file):
        digest = hash_then_swap(file)
        shutil.copy(evil, target + '.new')
        os.replace(target + '.new', target)
        return digest

    monkeypatch.setattr(safe_load, 'file_sha256', swapping)
    out = load_checkpoint_file(target)
    assert not osp.exists(marker) and 'x' not in out


def test_trusted_path_binds_the_file_opened(tmp_path, monkeypatch):
    """A link to a trusted file is re-pointed at another file after the trust check."""
    good, evil, marker = _good_and_evil(tmp_path)
    link = str(tmp_path / 'link.pth')
    os.symlink(good, link)
    monkeypatch.setenv(TRUSTED_ENV, good)
    check_then_swap = safe_load.damaged_member

    def swapping(file):
        os.remove(link)
        os.symlink(evil, link)
        return check_then_swap(file)

    monkeypatch.setattr(safe_load, 'damaged_member', swapping)
    out = load_checkpoint_file(link)
    assert not osp.exists(marker) and 'x' not in out


@pytest.fixture
def local_server(tmp_path, monkeypatch):
    """(folder served on 127.0.0.1, its base URL); torch hub's cache in tmp_path."""
    root = tmp_path / 'served'
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    yield root, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_trusted_url_binds_the_bytes_loaded_not_the_cached_path(tmp_path, local_server,
                                                                  monkeypatch):
    """The cached download is replaced after cached_download checked its hash."""
    root, base = local_server
    good, evil, marker = _good_and_evil(tmp_path)
    shutil.copy(good, root / 'model.pth')
    url = f'{base}/model.pth'
    monkeypatch.setenv(TRUSTED_ENV, url)
    download = checkpoint_module.cached_download

    def swapping(*args, **kwargs):
        path = download(*args, **kwargs)
        shutil.copy(evil, path)
        return path

    monkeypatch.setattr(checkpoint_module, 'cached_download', swapping)
    with pytest.raises(CheckpointError, match='refused by safe loading'):
        load_from_http(url)
    assert not osp.exists(marker)
    monkeypatch.setattr(checkpoint_module, 'cached_download', download)
    assert torch.equal(load_from_http(url)['state_dict']['w'], torch.ones(2))  # fetched again


# --- 6. PSA's cls_labels.npy: numpy state from the file -----------------------------------
class _Reduce:

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args,
                                                                 self.state)


def _label_file(path: str, payload: bytes) -> str:
    with open(path, 'wb') as f:
        np.lib.format.write_array_header_1_0(f, {'descr': '|O', 'fortran_order': False,
                                                 'shape': ()})
        f.write(payload)
    return path


def _npy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


_READ_IN_SUBPROCESS = '''
import sys
from mmaffseg.datasets.psa_cls_labels import UntrustedPickleError, read_psa_cls_labels
try:
    read_psa_cls_labels(sys.argv[1])
except UntrustedPickleError as e:
    print('refused:', e)
    sys.exit(3)
'''


def test_psa_object_dtype_from_file_state_is_refused_without_a_crash(tmp_path):
    """dtype('O') whose flags lack NPY_LIST_PICKLE: the array took 160 file bytes as object
    pointers, and reading the labels was a SIGSEGV (463-byte file)."""
    dtype = _Reduce(np.dtype, ('O', False, True), (3, '|', None, None, None, -1, -1, 1))
    vector = _Reduce(_npy_reconstruct(), (np.ndarray, (0, ), b'b'),
                     (1, (20, ), dtype, False, b'\x41' * 160))
    path = _label_file(str(tmp_path / 'objdtype.npy'), pickle.dumps({'img': vector}, 3))
    result = subprocess.run([sys.executable, '-c', _READ_IN_SUBPROCESS, path],
                            capture_output=True, text=True, timeout=120, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 3, (result.returncode, result.stderr[-500:])
    assert 'numpy.dtype' in result.stdout and path in result.stdout


def test_psa_zero_stride_array_is_refused_before_any_copy(tmp_path):
    """numpy.ndarray((n,), 'f8', 8 bytes, 0, (0,)): a 266-byte file took 1.4 GB (n=2**28)."""
    vector = _Reduce(np.ndarray, ((1 << 20, ), np.dtype('f8'), b'\0' * 8, 0, (0, )))
    path = _label_file(str(tmp_path / 'zero.npy'), pickle.dumps({'img': vector}, 3))
    with pytest.raises(UntrustedPickleError, match='numpy.ndarray'):
        read_psa_cls_labels(path)


def test_psa_build_on_other_objects_is_refused(tmp_path):
    """The C unpickler set the state (attributes) of whatever BUILD named."""
    payload = b'\x80\x03}(X\x03\x00\x00\x00img' + b'cnumpy\nndarray\n' + b'}b' + b'u.'
    path = _label_file(str(tmp_path / 'build.npy'), payload)
    with pytest.raises(UntrustedPickleError, match='sets the state'):
        read_psa_cls_labels(path)


def test_psa_labels_saved_by_numpy_still_read(tmp_path):
    table = {f'2007_{i:06d}': (np.arange(20) % (i + 2) == 0).astype(np.float32)
             for i in range(5)}
    saved = str(tmp_path / 'cls_labels.npy')
    np.save(saved, table, allow_pickle=True)
    protocol2 = str(tmp_path / 'cls_labels_p2.npy')
    _label_file(protocol2, pickle.dumps(np.array(table, dtype=object), protocol=2))
    for path in (saved, protocol2):
        out = read_psa_cls_labels(path)
        assert out.keys() == table.keys()
        assert all(np.array_equal(out[k], v) for k, v in table.items())


# --- 7. strict loading of weights the model cannot copy -----------------------------------
@pytest.mark.parametrize('kind', ['sparse', 'list'])
def test_strict_loading_refuses_weights_that_cannot_be_copied(tmp_path, kind):
    """Right name and shape, but sparse (or not a tensor): mmengine only warned, and the model
    kept its initial weight."""
    model = torch.nn.Linear(4, 4)
    weight = torch.eye(4).to_sparse() if kind == 'sparse' else [[0.0] * 4] * 4
    path = str(tmp_path / f'{kind}.pth')
    torch.save({'state_dict': {'weight': weight, 'bias': torch.zeros(4)}}, path)
    with pytest.raises(CheckpointError, match=r'no dense tensors \(weight \('):
        load_model_weights(model, path, strict=True)
