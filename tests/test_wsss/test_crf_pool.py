# Copyright (c) mmaffseg contributors. All rights reserved.
"""The dense CRFs of a pseudo-label run: pool size per rank from the cores it may use, chunk
size and overlap settings, the overlap order, and the pool's asynchronous submit."""
import numpy as np
import pytest
import test_pseudo_label_loop as psa_loop
import torch

from mmaffseg.postprocessing import worker_pool
from mmaffseg.postprocessing.dense_crf import DenseCRF
from mmaffseg.postprocessing.worker_pool import PersistentPool, WorkerTaskError
from mmaffseg.utils.config_errors import ConfigCheckError
from mmaffseg.wsss import crf_pool
from mmaffseg.wsss.crf_pool import (
    MIN_CHUNK_SIZE,
    crf_args_for_rank,
    crf_workers_per_rank,
    resolve_chunk_size,
    resolve_overlap,
    run_chunks,
    submit_batch_crf,
)

checkpoints, reference = psa_loop.checkpoints, psa_loop.reference  # the loop tests' fixtures


@pytest.fixture
def cores(monkeypatch):
    """Set the CPU affinity this process sees (``cores(n)``) and clear LOCAL_WORLD_SIZE."""
    monkeypatch.delenv('LOCAL_WORLD_SIZE', raising=False)

    def set_cores(n: int) -> None:
        monkeypatch.setattr(worker_pool.os, 'sched_getaffinity', lambda pid: set(range(n)),
                            raising=False)

    return set_cores


def test_pool_size_per_rank_from_affinity_and_local_ranks(cores, monkeypatch):
    cores(16)
    assert crf_workers_per_rank() == crf_workers_per_rank('cpu') == 16
    assert crf_workers_per_rank('cuda') == crf_workers_per_rank(torch.device('cuda', 1)) == 15
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '4')  # torchrun: 4 ranks share the 16 cores
    assert crf_workers_per_rank('cpu') == 4 and crf_workers_per_rank('cuda:0') == 3
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '32')  # more ranks than cores: serial, never 0
    assert crf_workers_per_rank('cpu') == 1 and crf_workers_per_rank('cuda') == 1
    monkeypatch.setenv('LOCAL_WORLD_SIZE', 'two')  # unreadable: one rank
    assert crf_workers_per_rank('cpu') == 16
    cores(1)
    monkeypatch.delenv('LOCAL_WORLD_SIZE')
    assert crf_workers_per_rank('cuda') == 1 and crf_workers_per_rank('cpu') == 1
    cores(6)  # 'auto' resolved, a number kept
    assert crf_args_for_rank(dict(workers='auto', iterations=5), 'cuda') == dict(
        workers=5, iterations=5)
    assert crf_args_for_rank(dict(workers=3), 'cuda') == dict(workers=3)
    assert DenseCRF(**crf_args_for_rank(dict(workers='auto'), 'cpu')).workers == 6


@pytest.mark.parametrize('workers', [-1, 'x', True, 1.5])
def test_bad_crf_workers_is_one_line_naming_the_setting(workers):
    with pytest.raises(ConfigCheckError, match=r"test_cfg.crf.workers must be 'auto' or an "
                       r'integer >= 0'):
        crf_args_for_rank(dict(workers=workers), 'cpu')
    assert crf_args_for_rank(dict(workers=3), 'cpu')['workers'] == 3


def test_chunk_size_is_its_own_setting(cores):
    assert resolve_chunk_size(None, 0) == resolve_chunk_size(None, 2) == MIN_CHUNK_SIZE == 4
    assert resolve_chunk_size(None, 12) == 12  # one image per CRF worker
    assert resolve_chunk_size(3, 12) == 3 and resolve_chunk_size(16, 2) == 16
    for bad in (0, -1, 2.5, True, '4'):
        with pytest.raises(ConfigCheckError, match=r'^test_cfg.chunk_size must be an integer '
                           r'>= 1 or None, got'):
            resolve_chunk_size(bad, 2)
    assert resolve_overlap('auto', 'cpu') is False and resolve_overlap('auto', 'cuda') is True
    assert resolve_overlap(True, 'cpu') is True and resolve_overlap(False, 'cuda') is False
    for bad in (1, 'yes', None):
        with pytest.raises(ConfigCheckError, match=r"^test_cfg.overlap_crf must be True, "
                           r"False or 'auto', got"):
            resolve_overlap(bad, 'cpu')


class _Recorder:
    """A chunk pipeline that records the order of its calls."""

    def __init__(self, fail_pass: int = -1) -> None:
        self.events, self.fail_pass, self.cancelled = [], fail_pass, []

    def model_pass(self, chunk):
        self.events.append(('pass', chunk))
        if chunk == self.fail_pass:
            raise RuntimeError('the output folder is full')
        return chunk

    def submit(self, done):
        self.events.append(('submit', done))
        recorder = self

        class Pending:
            def cancel(self):
                recorder.cancelled.append(done)

        return Pending()

    def finish(self, done, pending):
        self.events.append(('finish', done))


def test_overlap_collects_a_chunk_after_the_next_chunks_network_passes():
    rec = _Recorder()
    run_chunks([0, 1, 2], rec.model_pass, rec.submit, rec.finish, overlap=True)
    assert rec.events == [('pass', 0), ('submit', 0), ('pass', 1), ('finish', 0),
                          ('submit', 1), ('pass', 2), ('finish', 1), ('submit', 2),
                          ('finish', 2)]
    rec = _Recorder()
    run_chunks([0, 1], rec.model_pass, rec.submit, rec.finish, overlap=False)
    assert rec.events == [('pass', 0), ('submit', 0), ('finish', 0), ('pass', 1),
                          ('submit', 1), ('finish', 1)]
    # an error stops the run and cancels the CRFs still pending
    rec = _Recorder(fail_pass=1)
    with pytest.raises(RuntimeError, match='full'):
        run_chunks([0, 1, 2], rec.model_pass, rec.submit, rec.finish, overlap=True)
    assert rec.events[-1] == ('pass', 1) and rec.cancelled == [0]


def _square(x: int) -> int:
    if x < 0:
        raise ValueError(f'negative {x}')
    return x * x


def test_pool_submit_returns_before_collecting_same_results_and_errors():
    pool = PersistentPool()
    try:
        pending = pool.submit(_square, [(i, ) for i in range(6)], 2, label='item')
        assert pool.started  # the workers run while this process goes on
        assert pending.result() == [i * i for i in range(6)] == pool.run(
            _square, [(i, ) for i in range(6)], 2)
        pending = pool.submit(_square, [(1, ), (-2, ), (3, )], 2, label='item')
        with pytest.raises(WorkerTaskError, match=r'item 1 of 3 failed in a worker: '
                           r'ValueError: negative -2') as info:
            pending.result()
        assert info.value.index == 1 and pool.started  # the pool is kept
    finally:
        pool.close()


def _crf_inputs(rng, n: int):
    unaries, images = [], []
    for i in range(n):
        probs = rng.random((3, 20, 24)).astype(np.float32)
        unaries.append(dict(rw_crf=probs / probs.sum(0)) if i != 1 else {})
        images.append(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    return unaries, images


def test_submitted_crfs_equal_the_serial_ones_and_bad_input_falls_back():
    pytest.importorskip('pydensecrf')
    rng = np.random.default_rng(0)
    unaries, images = _crf_inputs(rng, 4)
    serial = submit_batch_crf(DenseCRF(workers=0), unaries, images).result()
    with DenseCRF(workers=2) as crf:
        pending = submit_batch_crf(crf, unaries, images)
        pooled = pending.result()
        assert [set(r) for r in pooled] == [{'rw_crf'}, set(), {'rw_crf'}, {'rw_crf'}]
        for a, b in zip(serial, pooled):
            for name in a:
                assert np.array_equal(a[name], b[name])  # bit for bit
        bad = [dict(rw_crf=u['rw_crf'][:, :-1]) if u else u for u in unaries]  # wrong size
        assert submit_batch_crf(crf, bad, images).result() == [None] * 4
        with pytest.raises(ValueError, match='same H and W'):
            submit_batch_crf(crf, bad, images).result(fallback=False)
    assert submit_batch_crf(DenseCRF(), [{}, {}], images[:2]).result() == [{}, {}]
    assert crf_pool.PendingCRF([], 0).result() == []


def test_loop_overlaps_crfs_with_the_next_chunk_and_writes_the_serial_outputs(
        reference, tiny_synthetic_root, checkpoints, tmp_path, monkeypatch):
    """Chunks of 2 images, CRFs in 2 processes, overlapped: the network passes of chunk i + 1
    run before the CRFs of chunk i are collected, and every file equals the serial run's."""
    pytest.importorskip('pydensecrf')
    from mmaffseg.wsss.pseudo_label_loop import PseudoLabelLoop
    events = []
    model_passes, collect = PseudoLabelLoop._model_passes, crf_pool.PendingCRF.result

    def record_passes(self, dataset, chunk, *args):
        events.append(('passes', tuple(chunk)))
        return model_passes(self, dataset, chunk, *args)

    def record_collect(self, fallback=True):
        events.append(('collect', self.num_images))
        return collect(self, fallback)

    monkeypatch.setattr(PseudoLabelLoop, '_model_passes', record_passes)
    monkeypatch.setattr(crf_pool.PendingCRF, 'result', record_collect)
    out = tmp_path / 'overlap'
    runner = psa_loop._runner(tiny_synthetic_root, checkpoints, out, **{
        'test_cfg.crf.workers': 2, 'test_cfg.chunk_size': 2, 'test_cfg.overlap_crf': True})
    loop = runner.test_loop
    assert (loop.chunk_size, loop.crf.workers, loop.overlap_crf) == (2, 2, True)
    runner.test()
    runner.test_loop.crf.close()
    assert events == [('passes', (0, 1)), ('passes', (2, 3)), ('collect', 2),
                      ('passes', (4, 5)), ('collect', 2), ('collect', 2)]
    assert loop.failures == [] and loop.processed == list(range(6))
    ref_files, files = psa_loop._outputs(reference[0]), psa_loop._outputs(str(out))
    assert set(files) == set(ref_files) and len(files) == 6 * 5  # cams + 4 stages
    for rel, path in files.items():
        with open(path, 'rb') as a, open(ref_files[rel], 'rb') as b:
            assert a.read() == b.read(), rel  # bit for bit
