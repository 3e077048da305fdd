# Copyright (c) mmaffseg contributors. All rights reserved.
"""DenseCRF: PSA golden parity, pool == serial, persistent pool, input checks."""
import copy
import os
import sys

import numpy as np
import pytest
import torch
from golden import assert_close, case_paths, load_case

from mmaffseg.postprocessing import DenseCRF, unary_from_probs
from mmaffseg.postprocessing.dense_crf import CRFWorkerError
from mmaffseg.postprocessing.worker_pool import available_cpus

try:
    import pydensecrf.densecrf  # noqa: F401
    HAS_CRF = True
except ImportError:
    HAS_CRF = False
needs_crf = pytest.mark.skipif(not HAS_CRF, reason='pydensecrf is not installed')

# meta.ctor of the reference crf_inference(img, probs, t, scale_factor, labels) -> DenseCRF.
CTOR_TO_ARG = {'t': 'iterations', 'scale_factor': 'scale_factor'}
CRF_CASES = case_paths('psa', 'crf_*')


def _random_case(rng, num_classes, h, w):
    probs = rng.random((num_classes, h, w)).astype(np.float32)
    probs /= probs.sum(0, keepdims=True)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return probs, img


def test_golden_cases_exist():
    assert CRF_CASES, 'no tests/data/golden/psa/crf_*.npz fixtures found'


@needs_crf
@pytest.mark.parametrize('path', CRF_CASES, ids=lambda p: p.split('/')[-1])
def test_golden_psa_crf(path):
    case = load_case(path)
    probs, img = case.inputs['probs'], case.inputs['img']
    kwargs = {}
    for key, value in case.meta['ctor'].items():
        if key == 'labels':  # the reference's class count: must be the probability stack's
            assert value == probs.shape[0]
        elif key in CTOR_TO_ARG:
            kwargs[CTOR_TO_ARG[key]] = value
        else:
            pytest.fail(f'{case.name}: unmapped reference argument {key}={value}')
    q = DenseCRF(**kwargs)(probs, img)  # the remaining settings are PSA's, our defaults
    assert q.dtype == np.float32
    assert_close(case, 'Q', q)


def test_unary_is_clipped_negative_log():
    probs = np.array([[[0.0, 1e-7]], [[0.5, 2.0]]], dtype=np.float32)  # (2, 1, 2)
    u = unary_from_probs(probs)
    assert u.shape == (2, 2) and u.dtype == np.float32 and u.flags['C_CONTIGUOUS']
    np.testing.assert_allclose(u, [[-np.log(1e-5), -np.log(1e-5)], [-np.log(0.5), 0.0]],
                               rtol=1e-6)


@needs_crf
def test_pool_equals_serial_and_keeps_order():
    rng = np.random.default_rng(0)
    # Different sizes and class counts: a reordering would show as a shape mismatch.
    shapes = [(3, 20, 28), (4, 17, 23), (2, 24, 16), (3, 9, 31), (5, 12, 12)]
    cases = [_random_case(rng, *s) for s in shapes]
    probs, imgs = [c[0] for c in cases], [c[1] for c in cases]
    serial = DenseCRF(workers=0).batch(probs, imgs)
    pooled = DenseCRF(workers=2).batch(probs, imgs)
    single = [DenseCRF()(p, i) for p, i in zip(probs, imgs)]
    assert [q.shape for q in pooled] == shapes
    for a, b, c in zip(serial, pooled, single):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


class _PidCRF(DenseCRF):
    """Returns the pid of the process that refined the image."""

    def _infer(self, probs, img):
        return np.array([os.getpid()])


class _FailingCRF(DenseCRF):
    """Fails on 5-class inputs: raises, or (``crash``) kills its worker process."""

    crash = False

    def _infer(self, probs, img):
        if probs.shape[0] == 5:
            if self.crash:
                os._exit(3)
            raise ArithmeticError('bad five-class image')
        return super()._infer(probs, img)


def test_pool_is_started_once_and_reused():
    """Later batches reuse the first batch's worker processes (no process start per batch)."""
    probs, img = np.full((2, 4, 4), 0.5, np.float32), np.zeros((4, 4, 3), np.uint8)
    with _PidCRF(workers=2, start_method='fork') as crf:
        pids = [int(q[0]) for _ in range(3) for q in crf.batch([probs] * 4, [img] * 4)]
        assert os.getpid() not in pids
        assert len(set(pids)) <= 2, f'{len(set(pids))} worker processes for 3 batches'
        # a copy (e.g. of a model holding the CRF) gets the settings, not the live pool
        clone = copy.deepcopy(crf)
        assert clone.workers == 2 and crf._pool.started and not clone._pool.started
    assert not crf._pool.started  # closed by the with block
    # one image runs in this process, no pool
    assert int(_PidCRF(workers=2).batch([probs], [img])[0][0]) == os.getpid()


@needs_crf
@pytest.mark.parametrize('crash', [False, True], ids=['raises', 'worker-dies'])
def test_worker_error_names_the_image_and_the_pool_recovers(crash):
    rng = np.random.default_rng(3)
    cases = [_random_case(rng, c, 9, 11) for c in (2, 3, 5, 4)]  # image 2 fails
    probs, imgs = [c[0] for c in cases], [c[1] for c in cases]
    with _FailingCRF(workers=2, start_method='fork') as crf:
        crf.crash = crash
        with pytest.raises(CRFWorkerError, match='image 2 of 4') as info:
            crf.batch(probs, imgs)
        assert info.value.index == 2
        if not crash:
            assert 'ArithmeticError: bad five-class image' in str(info.value)
        # the next batch works (a new pool after a dead worker) and equals the serial run
        good = [0, 1, 3]
        pooled = crf.batch([probs[k] for k in good], [imgs[k] for k in good])
    for k, q in zip(good, pooled):
        np.testing.assert_array_equal(q, DenseCRF()(probs[k], imgs[k]))


def test_workers_auto_is_the_available_cores(monkeypatch):
    monkeypatch.delenv('LOCAL_WORLD_SIZE', raising=False)
    assert DenseCRF(workers='auto').workers == available_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')  # two ranks on this machine share the cores
    assert DenseCRF(workers='auto').workers == max(1, len(os.sched_getaffinity(0)) // 2)
    with pytest.raises(ValueError, match="or 'auto'"):
        DenseCRF(workers='all')


@needs_crf
def test_marginals_and_tensor_inputs():
    rng = np.random.default_rng(1)
    probs, img = _random_case(rng, 3, 16, 20)
    q = DenseCRF(iterations=3)(torch.from_numpy(probs), torch.from_numpy(img))
    assert q.shape == (3, 16, 20)
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-5)
    # float64 probabilities and a non-contiguous image give the same answer as float32 ones
    img_nc = np.asfortranarray(img)
    q64 = DenseCRF(iterations=3)(probs.astype(np.float64), img_nc)
    np.testing.assert_allclose(q64, q, atol=1e-5)


@needs_crf
def test_crf_cleans_noisy_two_region_image():
    """Left half dark, right half bright; probabilities right on average but noisy."""
    rng = np.random.default_rng(2)
    h, w = 32, 48
    img = np.zeros((h, w, 3), np.uint8)
    img[:, w // 2:] = 200
    truth = np.zeros((h, w), np.int64)
    truth[:, w // 2:] = 1
    p1 = np.clip(0.3 + 0.4 * truth + rng.normal(0, 0.3, (h, w)), 0.01, 0.99)
    probs = np.stack([1 - p1, p1]).astype(np.float32)
    noisy_err = (probs.argmax(0) != truth).mean()
    crf_err = (DenseCRF()(probs, img).argmax(0) != truth).mean()
    assert noisy_err > 0.1
    assert crf_err < noisy_err / 5


@pytest.mark.parametrize('probs_shape,img_shape,probs_dtype,img_dtype,err,match', [
    ((3, 8, 8), (8, 9, 3), np.float32, np.uint8, ValueError, 'same H and W'),
    ((8, 8), (8, 8, 3), np.float32, np.uint8, ValueError, r'probs must be \(C, H, W\)'),
    ((3, 8, 8), (3, 8, 8), np.float32, np.uint8, ValueError, r'img must be \(H, W, 3\)'),
    ((3, 8, 8), (8, 8, 3), np.float32, np.float32, TypeError, 'img must be uint8'),
    ((3, 8, 8), (8, 8, 3), np.int64, np.uint8, TypeError, 'probs must be floating point'),
])
def test_clear_input_errors(probs_shape, img_shape, probs_dtype, img_dtype, err, match):
    probs = np.full(probs_shape, 0.5, dtype=probs_dtype)
    img = np.zeros(img_shape, dtype=img_dtype)
    with pytest.raises(err, match=match):
        DenseCRF()(probs, img)
    with pytest.raises(err, match=match):
        DenseCRF(workers=2).batch([probs], [img])


def test_nan_and_batch_length_errors():
    probs = np.full((2, 4, 4), 0.5, np.float32)
    img = np.zeros((4, 4, 3), np.uint8)
    bad = probs.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match='NaN or inf'):
        DenseCRF()(bad, img)
    with pytest.raises(ValueError, match='2 probability maps but 1 images'):
        DenseCRF().batch([probs, probs], [img])
    with pytest.raises(TypeError, match='numpy array or torch tensor'):
        DenseCRF()(probs.tolist(), img)


@pytest.mark.parametrize('kwargs,match', [
    (dict(iterations=0), 'iterations must be a positive integer'),
    (dict(gaussian_sxy=0), 'gaussian_sxy must be > 0'),
    (dict(bilateral_srgb=-1), 'bilateral_srgb must be > 0'),
    (dict(bilateral_compat=-1), 'bilateral_compat must be >= 0'),
    (dict(workers=-1), 'workers must be an integer >= 0'),
    (dict(start_method='threads'), 'start_method must be one of'),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DenseCRF(**kwargs)


def test_missing_pydensecrf_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'pydensecrf', None)
    monkeypatch.setitem(sys.modules, 'pydensecrf.densecrf', None)
    probs = np.full((2, 4, 4), 0.5, np.float32)
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ImportError, match='pip install pydensecrf2==1.1'):
        DenseCRF()(probs, img)
    with pytest.raises(ImportError, match='pip install pydensecrf2==1.1'):
        DenseCRF(workers=2).batch([probs, probs], [img, img])


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')
@pytest.mark.parametrize('start_method', ['fork', 'forkserver'])
def test_pool_workers_die_with_a_killed_parent(tmp_path, start_method):
    """SIGKILL of the process running DenseCRF.batch takes its pool workers with it."""
    import os
    import os.path as osp
    import signal
    import subprocess
    import time

    from mmaffseg.postprocessing import dense_crf
    script = tmp_path / 'runner.py'  # a file, so that spawned workers can import __main__
    script.write_text(
        'import importlib, os, sys, time, types\n'
        'import numpy as np\n'
        '# the CRF modules alone (numpy and torch only): fast to start, also in every worker\n'
        'package = sys.modules["crfpkg"] = types.ModuleType("crfpkg")\n'
        f'package.__path__ = [{osp.dirname(dense_crf.__file__)!r}]\n'
        'dense_crf = importlib.import_module("crfpkg.dense_crf")\n'
        'class SlowCRF(dense_crf.DenseCRF):\n'
        '    def _infer(self, probs, img):  # a CRF that takes a minute\n'
        '        # one write() of a short line is atomic on a pipe: the two workers\' lines\n'
        '        # cannot interleave (print() may write the number and the newline apart)\n'
        '        os.write(1, f"{os.getpid()}\\n".encode())\n'
        '        time.sleep(60)\n'
        'if __name__ == "__main__":\n'
        '    dense_crf._import_densecrf = lambda: None  # pydensecrf is not needed here\n'
        '    probs, img = np.full((2, 4, 4), 0.5, np.float32), np.zeros((4, 4, 3), np.uint8)\n'
        f'    SlowCRF(workers=2, start_method={start_method!r}).batch([probs] * 2, [img] * 2)\n')
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    workers = []
    try:
        workers = [int(proc.stdout.readline()) for _ in range(2)]  # both are in the CRF
        assert all(map(_alive, workers))
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, workers)), 'CRF workers outlived their killed parent'
    finally:
        proc.kill()
        for pid in workers:  # only the workers this test started
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
