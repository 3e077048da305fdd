# Copyright (c) mmaffseg contributors. All rights reserved.
"""ONNX export of every semantic model family, checked in ONNX Runtime against PyTorch.

The reference is the segmentor's own ``inference`` (whole or slide as configured, HANet row
positions from the metainfo), not the export wrapper. Models are the quick-start configs with
seeded random weights, at small inputs, on one thread.
"""
import os.path as osp
import runpy
import sys

import pytest
import torch

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from mmengine.registry import init_default_scope  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402

from mmaffseg.cli import load_config  # noqa: E402
from mmaffseg.cli.onnx_export import ExportError, export_onnx, verify_onnx  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py')


def cfg_path(name: str) -> str:
    return osp.join(REPO, 'configs', name)


HANET = cfg_path('hanet/hanet_r18-d16_quickstart_synthetic-128x256.py')
HANET_NECK = cfg_path('hanet/deeplabv3plus-hanet-neck_r50-d8_4xb2-80k_cityscapes-512x1024.py')
SPNET = cfg_path('spnet/spnet_r50-d8-slim_quickstart_synthetic-128x256.py')
CPNET = cfg_path('cpnet/cpnet_r50-d8-slim_quickstart_synthetic-128x256.py')
DSRL = cfg_path('dsrl/dsrl-deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py')
DEEPLABV1_CRF = cfg_path(
    'deeplabv1/deeplabv1-crf_vgg16-slim-largefov_quickstart_synthetic-128x256.py')
DEEPLABV2 = cfg_path('deeplabv2/deeplabv2_r18-d8_quickstart_synthetic-128x256.py')
DEEPLABV2_CRF = cfg_path('deeplabv2/deeplabv2-crf_r18-d8_quickstart_synthetic-128x256.py')
FEATURES = cfg_path('semantic_features/semantic-features_r18_quickstart_synthetic-128x256.py')
INSTANCES = cfg_path(
    'instance_embedding/instance-embedding_r18-fpn_quickstart_synthetic-128x256.py')


# the R-50 neck example shrunk to R-18 widths, to keep the test fast
R18_NECK = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512]),
    decode_head=dict(in_channels=512, channels=64, c1_in_channels=64, c1_channels=16),
    auxiliary_head=dict(in_channels=256, channels=32))


def build(config: str, seed: int = 0, overrides: dict = None):
    init_default_scope('mmseg')
    cfg = load_config(config)
    cfg.merge_from_dict(dict(model=overrides or {}))
    model_cfg = cfg.model
    if 'backbone' in model_cfg:
        model_cfg.backbone.pop('init_cfg', None)  # no pretrained download
        model_cfg.backbone.pop('pretrained', None)
    model_cfg.pop('pretrained', None)
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)  # PyTorch's default (random) initialisation
    # non-trivial norm statistics, so that a wrong normalisation shows
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.1, generator=gen)
            module.running_var.uniform_(0.5, 1.5, generator=gen)
    return model.eval()


def check(model, onnx_file, shape, seed=0):
    inputs = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(seed))
    result = verify_onnx(model, str(onnx_file), inputs, num_threads=1)
    assert result['max_abs_ref'] > 0
    assert result['max_abs_diff'] <= 1e-4 * max(result['max_abs_ref'], 1.0), result
    return result


# (config, model overrides, traced shape, other shapes checked on the same dynamic graph)
DYNAMIC = [
    pytest.param(HANET, None, (64, 96), [(40, 128)], id='hanet-aspp-head'),
    pytest.param(HANET_NECK, R18_NECK, (48, 64), [(56, 40)], id='hanet-neck'),
    pytest.param(SPNET, None, (64, 96), [(72, 88), (33, 47)], id='spnet'),
    pytest.param(DSRL, None, (64, 96), [(81, 73)], id='dsrl'),
    pytest.param(DEEPLABV1_CRF, None, (64, 96), [(72, 88)], id='deeplabv1-crf-network'),
    pytest.param(DEEPLABV2, None, (64, 96), [(72, 88)], id='deeplabv2'),
    pytest.param(DEEPLABV2_CRF, None, (64, 96), [(56, 64)], id='deeplabv2-crf-network'),
    pytest.param(FEATURES, None, (64, 96), [(70, 90)], id='semantic-features'),
]


@pytest.mark.parametrize('config,overrides,shape,others', DYNAMIC)
def test_dynamic_export_matches_pytorch(config, overrides, shape, others, tmp_path):
    model = build(config, overrides=overrides)
    onnx_file = export_onnx(model, shape, str(tmp_path / 'model.onnx'), dynamic=True)
    result = check(model, onnx_file, shape)
    if result['max_abs_ref'] > 0 and 'features' not in config:
        assert result['argmax_agreement'] > 0.999, result
    for i, other in enumerate(others):
        result = check(model, onnx_file, other, seed=i + 1)
        if 'features' not in config:
            assert result['argmax_agreement'] > 0.999, result


def test_cpnet_exports_at_its_crop_and_refuses_dynamic(tmp_path):
    model = build(CPNET)
    with pytest.raises(ExportError, match='prior'):
        export_onnx(model, (128, 256), str(tmp_path / 'dyn.onnx'), dynamic=True)
    with pytest.raises(ExportError, match='--shape 128 256'):
        export_onnx(model, (64, 128), str(tmp_path / 'small.onnx'))
    onnx_file = export_onnx(model, (128, 256), str(tmp_path / 'cpnet.onnx'))
    assert check(model, onnx_file, (128, 256))['argmax_agreement'] > 0.999


def test_sliding_window_config_exports_one_window(tmp_path):
    model = build(CPNET, overrides=dict(decode_head=dict(size_mode='resize')))
    with pytest.raises(ExportError, match='traced at one'):
        export_onnx(model, (96, 160), str(tmp_path / 'dyn.onnx'), dynamic=True)
    with pytest.raises(ExportError, match='sliding-window'):
        export_onnx(model, (128, 320), str(tmp_path / 'wide.onnx'))  # wider than the crop
    # an input inside one window: PyTorch's slide inference runs exactly that window
    onnx_file = export_onnx(model, (96, 160), str(tmp_path / 'window.onnx'))
    assert check(model, onnx_file, (96, 160))['argmax_agreement'] > 0.999


def test_instance_embedding_is_refused(tmp_path):
    with pytest.raises(ExportError, match='variable number of instances'):
        export_onnx(build(INSTANCES), (64, 96), str(tmp_path / 'x.onnx'))


def run_tool(monkeypatch, capsys, *args) -> tuple:
    """Run tools/deployment/pytorch2onnx.py in this process (its real ``main``)."""
    monkeypatch.setattr(sys, 'argv', [TOOL, *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(TOOL, run_name='__main__')
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_tool_end_to_end(tmp_path, monkeypatch, capsys):
    """The real CLI: checkpoint in, dynamic graph out, verified at two sizes."""
    model = build(HANET)
    ckpt = tmp_path / 'hanet.pth'
    torch.save(dict(state_dict=model.state_dict()), str(ckpt))
    out = tmp_path / 'deploy' / 'hanet.onnx'
    code, stdout, err = run_tool(monkeypatch, capsys, HANET, ckpt, '--shape', 64, 96,
                                 '--dynamic', '--out', out, '--verify')
    assert code == 0, err
    assert out.is_file()
    # the fixed batch and class dimensions are declared as numbers, not generated names
    import onnx
    (output, ) = onnx.load(str(out)).graph.output
    dims = [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]
    assert dims == [1, model.decode_head.out_channels, 'height', 'width']
    assert stdout.count('-> OK') == 2, stdout
    assert 'verify 72x88' in stdout


def test_tool_refuses_dynamic_cpnet(tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / 'cpnet.pth'
    torch.save(dict(state_dict=build(CPNET).state_dict()), str(ckpt))
    out = tmp_path / 'cpnet.onnx'
    code, _, err = run_tool(monkeypatch, capsys, CPNET, ckpt, '--shape', 128, 256,
                            '--dynamic', '--out', out)
    assert code == 1
    assert 'prior' in err and 'without --dynamic' in err
    assert not out.exists()


def test_tool_names_bad_checkpoint_and_out_folder(tmp_path, monkeypatch, capsys):
    """A random-bytes checkpoint and an --out under a regular file were raw tracebacks (found
    by tests/hostile_input_audit.py): exit 2 naming the argument."""
    ckpt = tmp_path / 'random.pth'
    ckpt.write_bytes(torch.randint(0, 256, (4096, ), dtype=torch.uint8,
                                   generator=torch.Generator().manual_seed(0)).numpy().tobytes())
    code, _, err = run_tool(monkeypatch, capsys, HANET, ckpt, '--shape', 64, 96,
                            '--out', tmp_path / 'x.onnx')
    assert code == 2, err
    last = err.strip().splitlines()[-1]  # (mmengine may log a closed-stream error before)
    assert last.startswith(f'pytorch2onnx.py: error: CHECKPOINT: checkpoint {ckpt} is not a '
                           'readable'), err
    good = tmp_path / 'hanet.pth'
    torch.save(dict(state_dict=build(HANET).state_dict()), str(good))
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    code, _, err = run_tool(monkeypatch, capsys, HANET, good, '--shape', 64, 96,
                            '--out', blocker / 'deploy' / 'x.onnx')
    assert code == 2, err
    assert f'error: --out: cannot create the folder of {blocker}' in err, err
    code, _, err = run_tool(monkeypatch, capsys, tmp_path / 'none.py', good, '--shape', 64, 96)
    assert code == 2 and f'error: CONFIG: config file {tmp_path}/none.py does not exist' in err
