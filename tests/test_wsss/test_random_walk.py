# Copyright (c) mmaffseg contributors. All rights reserved.
"""Sparse random walk: PSA golden walk, the paper's equation written out, equality with the dense
walk, batching, layout, devices, the compiled CPU kernel and its PyTorch fallback."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from benchmarks import random_walk as walk_benchmark
from benchmarks.dense_random_walk import (
    dense_affinity_matrix,
    dense_random_walk,
    dense_transition,
)
from benchmarks.random_walk import transition_matrix
from golden import assert_close, case_paths, load_case

from mmaffseg.ops.affinity_pairs import pairwise_affinity
from mmaffseg.ops.neighbour_offsets import from_window, neighbour_offsets
from mmaffseg.wsss import random_walk_kernel
from mmaffseg.wsss.cam import add_background, stack_to_label
from mmaffseg.wsss.random_walk import random_walk, random_walk_cams

WALK_CASES = case_paths('psa', 'random_walk_*')


def test_walk_fixtures_exist():
    assert WALK_CASES


@pytest.mark.parametrize('path', WALK_CASES, ids=lambda p: p.split('/')[-1])
def test_golden_random_walk(path):
    case = load_case(path)
    ctor = case.meta['ctor']  # alpha, beta, logt, radius
    walk_args = dict(radius=ctor['radius'], beta=ctor['beta'], logt=ctor['logt'])
    height, width = (int(s) for s in case.inputs['orig_hw'])
    feat = torch.from_numpy(case.inputs['feat'])
    grid = tuple(feat.shape[-2:])
    aff = pairwise_affinity(feat, ctor['radius'])
    num_classes = case.outputs['cam_full'].shape[0] - 1
    cams = torch.zeros(1, num_classes, height, width)
    cams[0, torch.from_numpy(case.inputs['cam_keys'])] = torch.from_numpy(case.inputs['cam_maps'])

    cam_full = add_background(cams, ctor['alpha'])
    assert_close(case, 'cam_full', cam_full[0])
    pooled = F.avg_pool2d(F.pad(cam_full, (0, -width % 8, 0, -height % 8)), 8, 8)
    assert_close(case, 'cam_pooled', pooled[0])
    aff_dense = dense_affinity_matrix(aff, grid, ctor['radius'])
    assert_close(case, 'aff_dense', aff_dense)
    assert_close(case, 'trans_mat', dense_transition(aff_dense, ctor['beta'], ctor['logt']))
    # our sparse T is the transpose of the reference's column-normalised matrix
    sparse_t = transition_matrix(aff, grid, ctor['radius'], ctor['beta']).to_dense().double()
    assert_close(case, 'trans_mat', torch.linalg.matrix_power(sparse_t, 2**ctor['logt']).T)
    assert_close(case, 'cam_rw', random_walk(pooled, aff, **walk_args))

    scores = random_walk_cams(cams, aff, alpha=ctor['alpha'], **walk_args)
    expected = case.outputs['cam_rw_up'][..., :height, :width]  # the reference crops later
    tol = case.tolerance('cam_rw_up')
    np.testing.assert_allclose(scores.numpy(), expected, rtol=tol['rtol'], atol=tol['atol'])
    assert_close(case, 'pred', scores.argmax(1)[0].to(torch.uint8))
    # walking only the present classes gives the same labels
    class_ids = torch.from_numpy(case.inputs['cam_keys'])
    present = random_walk_cams(cams[:, class_ids], aff, alpha=ctor['alpha'], **walk_args)
    assert_close(case, 'pred', stack_to_label(present.argmax(1), class_ids)[0].to(torch.uint8))


def naive_walk(scores: np.ndarray, aff: np.ndarray, radius: int, beta: float,
               steps: int) -> np.ndarray:
    """The paper's walk written out in float64 with explicit loops, independent of mmaffseg.

    ``vec(M*_c) = T^t vec(M_c)`` with ``T = D^-1 W^beta`` (elementwise power, D the row sums),
    W symmetric with a unit diagonal. ``aff`` is ``(K, P)``: the pair affinity of from-pixel p
    (rows ``[0, H - r + 1)``, columns ``[r - 1, W - r + 1)``, row-major) with its partner under
    offset k of the half plane ``(0, 1..r-1)``, then ``dy = 1..r-1``, ``dx = -(r-1)..r-1`` with
    ``dx^2 + dy^2 < r^2``.
    """
    channels, height, width = scores.shape
    offsets = [(0, dx) for dx in range(1, radius)]
    offsets += [(dy, dx) for dy in range(1, radius) for dx in range(1 - radius, radius)
                if dx * dx + dy * dy < radius * radius]
    affinity = np.eye(height * width)
    p = 0
    for y in range(0, height - radius + 1):
        for x in range(radius - 1, width - radius + 1):
            for k, (dy, dx) in enumerate(offsets):
                i, j = y * width + x, (y + dy) * width + x + dx
                affinity[i, j] = affinity[j, i] = aff[k, p]
            p += 1
    assert p == aff.shape[1]
    trans = affinity**beta
    trans = trans / trans.sum(axis=1, keepdims=True)
    vec = scores.reshape(channels, -1).T.astype(np.float64)
    for _ in range(steps):
        vec = trans @ vec
    return vec.T.reshape(scores.shape)


@pytest.fixture
def compiled():
    """Skips the test when the compiled CPU kernel cannot be built here."""
    if random_walk_kernel.compiled_library() is None:
        pytest.skip('the compiled random-walk kernel is unavailable: '
                    f'{random_walk_kernel.unavailable_reason()}')


# 5 channels take the CSR product, 17 and 20 the embedding_bag kernel (EMBEDDING_BAG_MIN_CHANNELS)
# of the PyTorch path; the compiled kernel pads 5 and 17 channels to 8 and 20, runs float32 at
# radius 5 in its unrolled variant (the ends of rows, float64 and other radii in the general one)
@pytest.mark.parametrize('kernel', ['torch', 'compiled'])
@pytest.mark.parametrize('size,radius,logt,channels,zero', [
    ((6, 9), 5, 8, 17, ()), ((9, 14), 5, 8, 5, (1, 3)), ((9, 14), 5, 8, 20, (0, 7, 19)),
    ((7, 10), 3, 6, 5, ()), ((5, 8), 4, 3, 17, ()), ((3, 3), 5, 2, 5, ())])
def test_walk_matches_the_papers_equation(size, radius, logt, channels, zero, kernel, request):
    if kernel == 'compiled':
        request.getfixturevalue('compiled')
    # random affinities and scores, border pixels included (the grids are mostly border); a
    # batch of two images with different affinities must not mix; channels zero everywhere
    # (absent classes) are skipped by the walk and must come out zero
    g = torch.Generator().manual_seed(7 * size[0] + size[1] + radius + channels)
    hf, wf = from_window(radius, size)
    aff = 0.4 + 0.6 * torch.rand(2, len(neighbour_offsets(radius)), hf * wf, generator=g,
                                 dtype=torch.float64)
    scores = torch.rand(2, channels, *size, generator=g, dtype=torch.float64)
    scores[:, list(zero)] = 0
    expected = np.stack([naive_walk(scores[b].numpy(), aff[b].numpy(), radius, 8, 2**logt)
                         for b in range(2)])
    ours64 = random_walk(scores, aff, radius, beta=8, logt=logt, kernel=kernel)
    np.testing.assert_allclose(ours64.numpy(), expected, rtol=0, atol=1e-12)
    ours32 = random_walk(scores.float(), aff.float(), radius, beta=8, logt=logt, kernel=kernel)
    assert ours32.dtype == torch.float32
    # float32 rounding over 256 steps: ~1e-5 on scores in [0, 1], as with a CSR T @ x
    np.testing.assert_allclose(ours32.numpy(), expected, rtol=0, atol=2e-5)


@pytest.mark.parametrize('size,radius', [((9, 13), 5), ((7, 6), 3), ((4, 11), 5), ((3, 3), 5)])
def test_sparse_walk_equals_dense_walk(size, radius):
    g = torch.Generator().manual_seed(sum(size) + radius)
    k = len(neighbour_offsets(radius))
    num_from = from_window(radius, size)[0] * from_window(radius, size)[1]
    aff = torch.rand(2, k, num_from, generator=g, dtype=torch.float64)
    scores = torch.rand(2, 4, *size, generator=g, dtype=torch.float64)
    ours = random_walk(scores, aff, radius, beta=2, logt=5)  # batched
    for b in range(2):
        ref = dense_random_walk(scores[b], aff[b], radius, beta=2, logt=5)
        torch.testing.assert_close(ours[b], ref, rtol=1e-9, atol=1e-12)


def test_compiled_kernel_equals_the_pytorch_kernels_at_any_thread_count(compiled):
    # a batch of two grids with 21 channels (16 + 8 with 3 padded, the unrolled radius-5 kernel)
    # and 37 (32 + 8, the general kernel):
    # the compiled kernel sums each pixel's pairs in another order than embedding_bag, so
    # float32 agrees to rounding (~5e-6 after 64 steps); over 1, 2 or 3 threads to the bit
    g = torch.Generator().manual_seed(3)
    size = (23, 31)
    hf, wf = from_window(5, size)
    aff = torch.rand(2, 34, hf * wf, generator=g)
    threads = torch.get_num_threads()
    for channels in (21, 37):
        scores = torch.rand(2, channels, *size, generator=g)
        expected = random_walk(scores, aff, logt=6, kernel='torch')
        outs = []
        try:
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                outs.append(random_walk(scores, aff, logt=6, kernel='compiled'))
        finally:
            torch.set_num_threads(threads)
        torch.testing.assert_close(outs[0], expected, rtol=0, atol=1e-5)
        assert outs[0].stride() == expected.stride()  # channels-last, as the PyTorch path
        for out in outs[1:]:
            torch.testing.assert_close(out, outs[0], rtol=0, atol=0)


def test_scores_all_zero_walk_to_zero():
    size = (6, 9)
    aff = torch.rand(1, 34, from_window(5, size)[0] * from_window(5, size)[1])
    for kernel in ('torch', 'auto'):
        out = random_walk(torch.zeros(1, 3, *size), aff, kernel=kernel)
        assert out.shape == (1, 3, *size) and not out.any()


def test_failed_build_falls_back_to_pytorch_with_one_warning(monkeypatch):
    import torch.utils.cpp_extension as cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError('no C++ compiler here')

    logged = []
    monkeypatch.setattr(cpp_extension, 'load_inline', no_compiler)
    monkeypatch.setattr(random_walk_kernel, 'print_log',
                        lambda msg, **kwargs: logged.append((msg, kwargs.get('level'))))
    monkeypatch.setattr(random_walk_kernel, '_library', None)
    monkeypatch.setattr(random_walk_kernel, '_failure', '')
    g = torch.Generator().manual_seed(0)
    aff = torch.rand(1, 34, from_window(5, (8, 12))[0] * from_window(5, (8, 12))[1], generator=g)
    scores = torch.rand(1, 4, 8, 12, generator=g)
    expected = random_walk(scores, aff, logt=4, kernel='torch')
    for _ in range(2):
        torch.testing.assert_close(random_walk(scores, aff, logt=4, kernel='auto'), expected,
                                   rtol=0, atol=0)
    assert len(logged) == 1 and logged[0][1] == 30  # WARNING, once
    assert 'no C++ compiler here' in logged[0][0]
    with pytest.raises(RuntimeError, match='compiled CPU kernel is unavailable.*no C'):
        random_walk(scores, aff, logt=4, kernel='compiled')


def test_kernel_choice_is_checked(monkeypatch):
    scores, aff = torch.rand(1, 2, 6, 11), torch.rand(1, 34, 6)
    with pytest.raises(ValueError, match="kernel must be one of .*'fast'"):
        random_walk(scores, aff, kernel='fast')
    monkeypatch.setenv(random_walk_kernel.KERNEL_ENV, 'cuda')
    with pytest.raises(ValueError, match=r"\$MMAFFSEG_RANDOM_WALK_KERNEL must be one of"):
        random_walk(scores, aff)
    with pytest.raises(ValueError, match="kernel='compiled' takes float32/float64 CPU scores"):
        random_walk(scores.half(), aff.half(), kernel='compiled')


def test_transition_matrix_structure():
    aff = torch.rand(3, 34, from_window(5, (10, 12))[0] * from_window(5, (10, 12))[1])
    trans = transition_matrix(aff, (10, 12))
    n = 3 * 120
    assert trans.layout == torch.sparse_csr and trans.shape == (n, n)
    assert trans.values().numel() == n + 2 * aff.numel()  # O(N * neighbours), not N^2
    # valid CSR: columns sorted and unique within every row
    torch.sparse_csr_tensor(trans.crow_indices(), trans.col_indices(), trans.values(), (n, n),
                            check_invariants=True)
    dense = trans.to_dense()
    torch.testing.assert_close(dense.sum(1), torch.ones(n))
    assert dense[:120, 120:].abs().sum() == 0  # images do not mix


def test_isolated_nodes_keep_their_scores():
    # grid 6 x 9, radius 5: row 0 columns 0..3 have no pair at all
    size = (6, 9)
    aff = torch.rand(1, 34, from_window(5, size)[0] * from_window(5, size)[1])
    scores = torch.rand(1, 3, *size)
    out = random_walk(scores, aff, logt=3)
    torch.testing.assert_close(out[..., 0, :4], scores[..., 0, :4])
    assert not torch.allclose(out[..., 2, 4], scores[..., 2, 4])


def test_wrong_affinity_grid_is_explained():
    with pytest.raises(ValueError, match=r'aff must be \(B, K, P\) = \(B, 34, 6\)'):
        random_walk(torch.rand(1, 2, 6, 11), torch.rand(1, 34, 12))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_walk_on_gpu_matches_cpu():
    g = torch.Generator().manual_seed(0)
    aff = torch.rand(2, 34, from_window(5, (12, 15))[0] * 7, generator=g)
    cams = torch.rand(2, 3, 90, 117, generator=g)
    cpu = random_walk_cams(cams, aff)
    gpu = random_walk_cams(cams.cuda(), aff.cuda())
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-6)


def test_benchmark_tool_runs_on_a_small_image():
    tool = walk_benchmark
    runs = {m: tool.walk_case(m, 96, 128, 8, 4, 1, 1, 'cpu') for m in ('dense', 'mmaffseg')}
    assert runs['mmaffseg']['labels'].shape == (96, 128)
    np.testing.assert_array_equal(runs['mmaffseg']['labels'], runs['dense']['labels'])
    truth = tool.synthetic_scene(96, 128, 8, 4)[2].numpy()
    assert tool.miou(runs['mmaffseg']['labels'], truth) > 0.5
    floor = tool.floor_case(64, 128, 8, 3, 1, 1, 'cpu', logt=2, copy_gib=1 / 64, matmul_size=64)
    assert floor['floor_bytes'] == 4 * 4 * 8 * 16 * (69 + 2 * 3) + 4 * 34 * 4 * 8
    # the compiled kernel: 34 pair weights + 1 / d, 3 channels padded to 4, a 4-pixel border
    assert floor['kernel_bytes'] == 4 * 4 * 8 * 16 * (35 + 2 * 4)
    assert floor['kernel_working_set'] == (8 + 8) * (16 + 8) * 4 * (35 + 2 * 4)
    assert floor['bandwidth'] > 0 and floor['walk']['cpu_s'] > 0
