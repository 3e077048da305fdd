# Copyright (c) mmaffseg contributors. All rights reserved.
"""The CAM inference settings of the pseudo-label job: float32 parity of the prepared network
(BatchNorms folded, channels-last) with :func:`multi_scale_cam`, bf16 autocast, the settings'
checks and their per-device defaults."""
import pytest
import test_pseudo_label_provenance as prov
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmaffseg  # noqa: F401
from mmaffseg.utils.config_errors import ConfigCheckError
from mmaffseg.wsss.cam import multi_scale_cam
from mmaffseg.wsss.cam_inference import (
    CAMInference,
    PreparedCAM,
    fold_batchnorm,
    resolve_cam_inference,
)

CAM_HEAD = dict(type='CAMHead', in_channels=4096, channels=4096, num_convs=0, num_classes=5,
                dropout_ratio=0.5, in_index=0)
R18_HEAD = dict(CAM_HEAD, in_channels=64, channels=64)
checkpoints = prov.checkpoints  # the fixture: random CAM classifier and AffinityNet


def _model(backbone: dict, head: dict) -> nn.Module:
    """A CAM classifier with seeded weights and BatchNorm statistics that are not the
    identity (so that folding has something to fold)."""
    init_default_scope('mmseg')
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MODELS.build(dict(type='CAMClassifier', backbone=backbone, decode_head=head))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return model.eval()


@pytest.fixture(scope='module')
def resnet38():
    return _model(dict(type='ResNet38', out_indices=(5, )), CAM_HEAD)


@pytest.fixture(scope='module')
def resnet18():
    return _model(dict(type='ResNetV1c', depth=18, base_channels=8, out_indices=(3, ),
                       strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)), R18_HEAD)


def _image(h: int = 40, w: int = 56) -> torch.Tensor:
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(1))


def _bn_calls(module: nn.Module) -> int:
    return sum(1 for n in module.graph.nodes if n.op == 'call_module'
               and isinstance(module.get_submodule(n.target), nn.BatchNorm2d))


@pytest.mark.parametrize('name', ['resnet38', 'resnet18'])
def test_fp32_prepared_network_matches_multi_scale_cam(name, request):
    model = request.getfixturevalue(name)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    labels = torch.tensor([1., 0, 1, 0, 1])
    img = _image()
    with torch.no_grad():
        ref, ref_ids = multi_scale_cam(model.forward_cam, img, labels, scales=(1.0, 0.5, 1.5))
    for channels_last in (False, True):
        prepared = PreparedCAM(model, CAMInference(channels_last=channels_last, fold_bn=True))
        cams, ids = multi_scale_cam(prepared.forward_cam, img, labels, scales=(1.0, 0.5, 1.5))
        assert torch.equal(ids, ref_ids) and cams.dtype == torch.float32
        torch.testing.assert_close(cams, ref, rtol=1e-5, atol=2e-6)
        assert not cams.is_inference()  # usable outside inference mode
    # the BatchNorms after a convolution were folded in a traced copy; the model is unchanged
    folded = fold_batchnorm(model)
    total = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    # ResNet-38 is pre-activation: the BN after conv1 of each block (20) is folded, the ones
    # on the block inputs (before ReLU and conv) are not; ResNet-18-D has conv-BN everywhere
    assert total - _bn_calls(folded) == (20 if name == 'resnet38' else total)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_bf16_autocast_is_close_but_not_float32(resnet18):
    labels = torch.tensor([1., 1, 0, 0, 0])
    img = _image()
    with torch.no_grad():
        ref, _ = multi_scale_cam(resnet18.forward_cam, img, labels, scales=(1.0, 0.5))
    prepared = PreparedCAM(resnet18, resolve_cam_inference(dict(amp='bf16'), 'cpu'))
    cams, _ = multi_scale_cam(prepared.forward_cam, img, labels, scales=(1.0, 0.5))
    assert cams.dtype == torch.float32 and prepared.settings.precision == 'bf16'
    diff = (cams - ref).abs().max().item()
    assert 0 < diff < 0.1  # bfloat16 keeps 8 bits: close, not equal


def test_untraceable_network_runs_unfolded(resnet18):
    class Untraceable(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward_cam(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                return self.inner.forward_cam(x)
            return self.inner.forward_cam(-x)

    model = Untraceable(resnet18).eval()
    prepared = PreparedCAM(model, CAMInference(fold_bn=True))
    x = _image()
    with torch.no_grad():
        torch.testing.assert_close(prepared.forward_cam(x), model.forward_cam(x))


def test_settings_defaults_per_device_and_one_line_errors():
    cpu = resolve_cam_inference(None, 'cpu')
    assert cpu == CAMInference(amp=None, channels_last=False, fold_bn=True)
    assert cpu.precision == 'fp32'
    assert resolve_cam_inference({}, 'cuda') == CAMInference(None, True, True)
    assert resolve_cam_inference(dict(amp='bf16', channels_last=True, fold_bn=False),
                                 'cpu') == CAMInference('bf16', True, False)
    cases = [
        (dict(chanels_last=True), r"^test_cfg.cam_inference: unknown key 'chanels_last' "
         r"\(did you mean 'channels_last'\?\); the keys are amp, channels_last, fold_bn$"),
        (dict(amp='fp8'), r"^test_cfg.cam_inference.amp must be None \(float32\), 'bf16' or "
         r"'fp16', got 'fp8'$"),
        (dict(amp=True), r'amp must be None'),
        (dict(channels_last='yes'), r"^test_cfg.cam_inference.channels_last must be True, "
         r"False or 'auto', got 'yes'$"),
        (dict(fold_bn='auto'), r'^test_cfg.cam_inference.fold_bn must be True or False, '
         r"got 'auto'$"),
        (['amp'], r'^test_cfg.cam_inference must be a dict'),
    ]
    for cfg, message in cases:
        with pytest.raises(ConfigCheckError, match=message):
            resolve_cam_inference(cfg, 'cpu')


def test_bf16_on_a_gpu_without_bf16_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *a, **k: False)
    with pytest.raises(ConfigCheckError, match=r"amp='bf16': this GPU has no bfloat16 "
                       r"support; use 'fp16' or None$"):
        resolve_cam_inference(dict(amp='bf16'), 'cuda')
    assert resolve_cam_inference(dict(amp='fp16'), 'cuda').precision == 'fp16'


def test_cam_precision_change_stops_a_rerun_and_overwrite_recomputes(
        tiny_synthetic_root, checkpoints, tmp_path, capsys):
    """A folder made in float32 is not reused by a bf16 run (nor the reverse): the CAM cache
    and every stage are made from other inputs; channels-last and BN folding change nothing
    recorded."""
    out = tmp_path / 'out'
    prov._main(prov._args(tiny_synthetic_root, *checkpoints, out))
    made = prov._contents(out)
    prov._main(prov._args(tiny_synthetic_root, *checkpoints, out, options=[
        'test_cfg.cam_inference.channels_last=True', 'test_cfg.cam_inference.fold_bn=False']))
    assert prov._contents(out) == made  # reused
    bf16 = ['test_cfg.cam_inference.amp=bf16']
    capsys.readouterr()
    prov._main(prov._args(tiny_synthetic_root, *checkpoints, out, options=bf16), status=2)
    error = prov._error(capsys.readouterr().err)
    assert ("stage 'cams' was made from other inputs (cam_precision: \"<absent>\" -> "
            '\"bf16\")') in error
    assert '--overwrite' in error and prov._contents(out) == made  # nothing touched
    prov._main(prov._args(tiny_synthetic_root, *checkpoints, out, '--overwrite', options=bf16))
    assert prov._contents(out).keys() == made.keys() and prov._contents(out) != made
