# Copyright (c) mmaffseg contributors. All rights reserved.
"""Claiming an output folder: lock, check, clear exactly the stale stages, write the record;
under a process group rank 0 claims it for every rank."""
import json
import os
import os.path as osp

import pytest
from gloo_processes import run_in_gloo_processes

from mmaffseg.utils.folder_claim import (
    FolderClaim,
    claim_folder,
    claim_folder_for_all_ranks,
)
from mmaffseg.utils.folder_lock import FolderInUseError, FolderLock
from mmaffseg.utils.provenance import RECORD_NAME, Provenance, ProvenanceError


def _prov(folder, beta=8, cam='A') -> Provenance:
    prov = Provenance(str(folder), '--out', 'test')
    prov.stage('cams', dict(checkpoint=cam))
    prov.stage('rw', dict(beta=beta), sources=['cams'])
    return prov


def _fill(folder) -> dict:
    """Files of the stages cams and rw and a report; what claim_folder is told of them."""
    for rel in ('cams/a.npz', 'rw/sub/a.png', 'table1.md'):
        path = osp.join(folder, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(rel)
    return dict(cams=[osp.join(folder, 'cams')], rw=[osp.join(folder, 'rw')],
                cam=[osp.join(folder, 'cam')])  # 'cam': not declared, no files


def test_claim_clears_exactly_the_stale_stages(tmp_path):
    outputs = dict(cams=[str(tmp_path / 'cams')], rw=[str(tmp_path / 'rw')],
                   cam=[str(tmp_path / 'cam')])  # 'cam': not declared
    claim_folder(_prov(tmp_path), outputs).release()  # a new folder: the record comes first
    with open(tmp_path / RECORD_NAME) as f:
        assert set(json.load(f)['stages']) == {'cams', 'rw'}
    _fill(tmp_path)  # the run's files
    claim_folder(_prov(tmp_path), outputs).release()  # a matching rerun
    assert osp.isfile(tmp_path / 'table1.md')  # not named as regenerated: left alone
    with pytest.raises(ProvenanceError, match="stage 'rw' was made from other inputs"):
        claim_folder(_prov(tmp_path, beta=2), outputs)
    assert osp.isfile(tmp_path / 'rw' / 'sub' / 'a.png')  # nothing removed
    FolderLock(str(tmp_path), '--out').acquire().release()  # the failed claim let it go
    with claim_folder(_prov(tmp_path, beta=2), outputs, overwrite=True,
                      regenerated=[str(tmp_path / 'table1.md')]) as claim:
        assert claim.cleared == ['rw']
        with pytest.raises(FolderInUseError):
            FolderLock(str(tmp_path), '--out').acquire()
    assert not osp.exists(tmp_path / 'rw') and not osp.exists(tmp_path / 'table1.md')
    assert osp.isfile(tmp_path / 'cams' / 'a.npz')  # still valid: kept
    assert _prov(tmp_path, beta=2).check(['cams', 'rw']) == []  # the new record


def test_rank0_claims_for_every_rank(tmp_path):
    """Two gloo processes claim one folder: rank 0 holds the lock, rank 1 is not refused;
    with a stale stage both stop with rank 0's error; with --overwrite both see it cleared."""
    folder = tmp_path / 'out'
    claim_folder(_prov(folder), {}).release()
    outputs = _fill(folder)

    def claim(beta, overwrite):
        def fn(rank, world_size):
            try:
                result = claim_folder_for_all_ranks(
                    lambda: claim_folder(_prov(folder, beta=beta), outputs, overwrite))
            except ProvenanceError as e:
                return 'error', e.strerror
            held = result.lock is not None and result.lock.held
            result.release()
            return held, result.cleared
        return fn

    def run(beta, overwrite, name):
        (tmp_path / name).mkdir()
        return run_in_gloo_processes(claim(beta, overwrite), tmp_path / name)

    same = run(8, False, 'g1')
    assert same == [(True, []), (False, [])]
    stale = run(2, False, 'g2')
    assert stale[0][0] == 'error' and stale[0] == stale[1]
    assert 'beta: 8 -> 2' in stale[0][1]
    cleared = run(2, True, 'g3')
    assert cleared == [(True, ['rw']), (False, ['rw'])]


def test_single_process_claim_is_the_claim(tmp_path):
    claim = claim_folder_for_all_ranks(lambda: FolderClaim(None, ['x']))
    assert claim.cleared == ['x'] and claim.lock is None
