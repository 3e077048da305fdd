# Copyright (c) mmaffseg contributors. All rights reserved.
"""The provenance record: stage inputs, inheritance from sources, checks and the hash cache."""
import hashlib
import json
import os

import pytest

from mmaffseg.utils.provenance import (
    RECORD_NAME,
    Provenance,
    ProvenanceError,
    file_sha256,
    flatten_settings,
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('MMAFFSEG_CACHE_DIR', str(tmp_path / 'cache'))


def _record(folder, cam_ckpt, aff_ckpt, beta=8):
    prov = Provenance(str(folder), '--out-dir', 'test')
    prov.stage('cams', dict(checkpoint=file_sha256(str(cam_ckpt)), scales=(1.0, 0.5)))
    prov.stage('rw', dict(checkpoint=file_sha256(str(aff_ckpt)), walk=dict(beta=beta)),
               sources=['cams'])
    return prov


def test_file_sha256_is_the_contents_hash_and_follows_changes(tmp_path):
    f = tmp_path / 'a.pth'
    f.write_bytes(b'one')
    assert file_sha256(str(f)) == 'sha256:' + hashlib.sha256(b'one').hexdigest()
    f.write_bytes(b'two!')  # new size: a new cache key
    assert file_sha256(str(f)) == 'sha256:' + hashlib.sha256(b'two!').hexdigest()
    # same contents under another name: same digest (contents, not path)
    g = tmp_path / 'b.pth'
    g.write_bytes(b'two!')
    assert file_sha256(str(g)) == file_sha256(str(f))


def test_file_sha256_cache_is_keyed_by_size_and_mtime(tmp_path, monkeypatch):
    f = tmp_path / 'a.pth'
    f.write_bytes(b'x' * 10)
    first = file_sha256(str(f))
    cache = json.loads((tmp_path / 'cache' / 'sha256.json').read_text())
    assert list(cache.values()) == [first]
    # a cached digest is not recomputed: reading the file again would fail
    import mmaffseg.utils.provenance as provenance
    monkeypatch.setattr(provenance, '_memory_cache', {})
    real_open = open

    def no_read(path, *args, **kwargs):
        assert os.path.realpath(path) != os.path.realpath(str(f)), 'file read again'
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr('builtins.open', no_read)
    assert file_sha256(str(f)) == first
    monkeypatch.setattr('builtins.open', real_open)
    # same size, new mtime and contents: hashed again
    f.write_bytes(b'y' * 10)
    os.utime(f, ns=(1, 1))
    assert file_sha256(str(f)) == 'sha256:' + hashlib.sha256(b'y' * 10).hexdigest()


def test_flatten_settings():
    assert flatten_settings({'a': {'b': (1, 2)}, 'c': 'x'}) == {'a.b': [1, 2], 'c': 'x'}


def test_matching_record_is_reused(tmp_path):
    cam, aff = tmp_path / 'cam.pth', tmp_path / 'aff.pth'
    cam.write_bytes(b'cam')
    aff.write_bytes(b'aff')
    _record(tmp_path / 'out', cam, aff).write()
    assert _record(tmp_path / 'out', cam, aff).check(['cams', 'rw']) == []


def test_new_walk_setting_invalidates_rw_only(tmp_path):
    cam, aff = tmp_path / 'cam.pth', tmp_path / 'aff.pth'
    cam.write_bytes(b'cam')
    aff.write_bytes(b'aff')
    _record(tmp_path / 'out', cam, aff).write()
    prov = _record(tmp_path / 'out', cam, aff, beta=2)
    with pytest.raises(ProvenanceError) as info:
        prov.check(['cams', 'rw'])
    message = info.value.strerror
    assert "stage 'rw'" in message and 'walk.beta: 8 -> 2' in message
    assert "'cams'" not in message and '--overwrite' in message and '--out-dir' in message
    assert prov.check(['cams', 'rw'], overwrite=True) == ['rw']


def test_new_cam_checkpoint_invalidates_everything_downstream(tmp_path):
    cam, aff = tmp_path / 'cam.pth', tmp_path / 'aff.pth'
    cam.write_bytes(b'cam')
    aff.write_bytes(b'aff')
    _record(tmp_path / 'out', cam, aff).write()
    cam.write_bytes(b'new cam')
    prov = _record(tmp_path / 'out', cam, aff)
    assert prov.check(['cams', 'rw'], overwrite=True) == ['cams', 'rw']
    with pytest.raises(ProvenanceError, match=r"cams/checkpoint: \"?sha256:"):
        prov.check(['rw'])
    # a stage without files cannot be stale
    assert prov.check([]) == []


def test_files_without_a_record_are_a_mismatch(tmp_path):
    cam, aff = tmp_path / 'cam.pth', tmp_path / 'aff.pth'
    cam.write_bytes(b'cam')
    aff.write_bytes(b'aff')
    with pytest.raises(ProvenanceError, match="'cams' has files but no provenance record"):
        _record(tmp_path / 'out', cam, aff).check(['cams'])


def test_unreadable_record_is_one_error(tmp_path):
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / RECORD_NAME).write_text('{not json')
    cam, aff = tmp_path / 'cam.pth', tmp_path / 'aff.pth'
    cam.write_bytes(b'cam')
    aff.write_bytes(b'aff')
    with pytest.raises(ProvenanceError, match='cannot be read'):
        _record(tmp_path / 'out', cam, aff).check(['cams'])


def test_write_keeps_stages_not_declared_now(tmp_path):
    cam, aff = tmp_path / 'cam.pth', tmp_path / 'aff.pth'
    cam.write_bytes(b'cam')
    aff.write_bytes(b'aff')
    _record(tmp_path / 'out', cam, aff).write()
    only_cams = Provenance(str(tmp_path / 'out'), '--out-dir', 'test')
    only_cams.stage('cams', dict(checkpoint=file_sha256(str(cam)), scales=(1.0, 0.5)))
    only_cams.write()
    assert set(only_cams.recorded()) == {'cams', 'rw'}


def test_undeclared_source_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match='not declared'):
        Provenance(str(tmp_path), '--x', 't').stage('rw', {}, sources=['cams'])


def test_overwrite_recovers_from_an_unreadable_record(tmp_path):
    """The message of an unreadable record offers --overwrite, which raised the same error."""
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / RECORD_NAME).write_text('{not json')
    cam, aff = tmp_path / 'cam.pth', tmp_path / 'aff.pth'
    cam.write_bytes(b'cam')
    aff.write_bytes(b'aff')
    prov = _record(tmp_path / 'out', cam, aff)
    assert prov.check(['rw'], overwrite=True) == ['rw']
    prov.write()
    assert set(prov.recorded()) == {'cams', 'rw'}


def test_stages_with_outputs_may_be_any_iterable(tmp_path):
    """A generator was consumed by the first stage's test: later stages were never checked."""
    cam, aff = tmp_path / 'cam.pth', tmp_path / 'aff.pth'
    cam.write_bytes(b'cam')
    aff.write_bytes(b'aff')
    _record(tmp_path / 'out', cam, aff).write()
    prov = _record(tmp_path / 'out', cam, aff, beta=2)
    assert prov.check((s for s in ['cams', 'rw']), overwrite=True) == ['rw']
