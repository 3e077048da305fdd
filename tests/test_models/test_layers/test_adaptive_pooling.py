# Copyright (c) mmaffseg contributors. All rights reserved.
"""Explicit-bin adaptive pooling equals PyTorch's adaptive pooling (values and gradients)."""
import pytest
import torch
import torch.nn.functional as F

from mmaffseg.models.layers.adaptive_pooling import (
    adaptive_avg_pool2d,
    adaptive_bins,
    adaptive_max_pool2d,
)

# (H, W, out_h, out_w): dividing, non-dividing, upsampling (out > in), strips, None axes
CASES = [(7, 9, 3, 4), (16, 16, 5, 16), (65, 33, 16, 1), (5, 5, 12, 7), (64, 128, 20, 12),
         (13, 1, 16, 1), (100, 3, 16, None), (3, 100, None, 1), (17, 23, 20, 12), (8, 8, 4, 2),
         (1, 1, 3, 3), (31, 29, 1, 1)]


def test_bins_follow_pytorch_rule():
    for n in range(1, 40):
        for m in range(1, 25):
            member = adaptive_bins(torch.arange(n), m)
            for i in range(m):
                start, end = (i * n) // m, -(-((i + 1) * n) // m)
                expected = torch.zeros(n, dtype=torch.bool)
                expected[start:end] = True
                assert torch.equal(member[i], expected), (n, m, i)


@pytest.mark.parametrize('h,w,out_h,out_w', CASES)
@pytest.mark.parametrize('mode', ['avg', 'max'])
def test_equals_torch_adaptive_pool(h, w, out_h, out_w, mode):
    gen = torch.Generator().manual_seed(h * 1000 + w)
    x = torch.randn(2, 3, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
    ref_fn, our_fn = ((F.adaptive_avg_pool2d, adaptive_avg_pool2d) if mode == 'avg' else
                      (F.adaptive_max_pool2d, adaptive_max_pool2d))
    ref, ours = ref_fn(x, (out_h, out_w)), our_fn(x, (out_h, out_w))
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    grad_out = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    ref_grad, = torch.autograd.grad(ref, x, grad_out)
    our_grad, = torch.autograd.grad(ours, x, grad_out)
    torch.testing.assert_close(our_grad, ref_grad, rtol=0, atol=1e-12)


def test_float32_matches_closely():
    x = torch.randn(2, 8, 33, 47, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(adaptive_avg_pool2d(x, (20, 12)),
                               F.adaptive_avg_pool2d(x, (20, 12)), rtol=1e-6, atol=1e-6)


def test_max_ties_send_gradient_to_one_element_like_torch():
    # ReLU features are full of ties (zeros): the gradient must not be split among them
    x = torch.zeros(1, 2, 9, 5, dtype=torch.float64, requires_grad=True)
    grad_out = torch.ones(1, 2, 4, 1, dtype=torch.float64)
    ref, = torch.autograd.grad(F.adaptive_max_pool2d(x, (4, 1)), x, grad_out)
    ours, = torch.autograd.grad(adaptive_max_pool2d(x, (4, 1)), x, grad_out)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_traced_graph_follows_input_size():
    """Traced at one size, the graph must pool other sizes with their own bins."""

    def pool(x):
        return adaptive_avg_pool2d(x, (20, 12)) + adaptive_max_pool2d(x, (20, 12))

    traced = torch.jit.trace(pool, torch.randn(1, 2, 40, 24), check_trace=False)
    for h, w in [(33, 47), (8, 5), (64, 100)]:
        x = torch.randn(1, 2, h, w, generator=torch.Generator().manual_seed(h))
        expected = F.adaptive_avg_pool2d(x, (20, 12)) + F.adaptive_max_pool2d(x, (20, 12))
        torch.testing.assert_close(traced(x), expected, rtol=1e-6, atol=1e-6)


class _Pools(torch.nn.Module):

    def forward(self, x):
        return torch.cat([
            adaptive_avg_pool2d(x, (20, 12)).flatten(1),
            adaptive_max_pool2d(x, (16, 1)).flatten(1),
            adaptive_avg_pool2d(x, (None, 1)).mean((2, 3)),
        ], dim=1)


def test_onnx_export_with_dynamic_size(tmp_path):
    """One exported graph pools every size like PyTorch's adaptive pooling, in ONNX Runtime."""
    pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    path = str(tmp_path / 'pools.onnx')
    with torch.no_grad():
        torch.onnx.export(_Pools(), (torch.randn(1, 2, 40, 24), ), path, input_names=['x'],
                          dynamic_axes={'x': {2: 'h', 3: 'w'}}, opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    for h, w in [(40, 24), (33, 47), (7, 5), (64, 100)]:
        x = torch.randn(1, 2, h, w, generator=torch.Generator().manual_seed(h))
        expected = torch.cat([
            F.adaptive_avg_pool2d(x, (20, 12)).flatten(1),
            F.adaptive_max_pool2d(x, (16, 1)).flatten(1),
            F.adaptive_avg_pool2d(x, (h, 1)).mean((2, 3)),
        ], dim=1)
        got = torch.from_numpy(session.run(None, {'x': x.numpy()})[0])
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
