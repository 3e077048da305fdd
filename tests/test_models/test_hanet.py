# Copyright (c) mmaffseg contributors. All rights reserved.
"""Golden parity with the official HANet code for every fixture in tests/data/golden/hanet.

Module cases (``kind == 'module'``, official ``HANet_Conv``) are built from ``meta.ctor``
through the generic argument mapping and loaded through the checkpoint converter. Model cases
(``kind == 'model'``, official ``DeepV3PlusHANet``) are built from
``configs/hanet/hanet_r101-d8_4xb2-80k_cityscapes-512x1024.py`` with the official options
mapped onto the head, the official 128-channel stem and BN instead of SyncBN; they compare the
logits, the four attention maps and the output of the third HANet.
"""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from converters.hanet_converter import convert_official_hanet
from golden import assert_close, case_paths, load_case
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from official_configs import official_hanet_head_kwargs, official_hanet_kwargs

from mmaffseg.models.layers import HANet, sinusoid_table
from mmaffseg.ops import batch_row_positions

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HANET_CONFIG = osp.join(REPO, 'configs', 'hanet', 'hanet_r101-d8_4xb2-80k_cityscapes-512x1024.py')
CASES = case_paths('hanet')
MODULE_CASES = [p for p in CASES if load_case(p).meta['kind'] == 'module']
MODEL_CASES = [p for p in CASES if load_case(p).meta['kind'] == 'model']


def _name(path: str) -> str:
    return osp.basename(path)[:-4]


def _row_positions(case) -> torch.Tensor:
    """The official position map's column 0, the only part the reference reads."""
    return torch.from_numpy(case.inputs['pos_h'][:, :, 0]).long()


# The official position map holds, for each input row, its row in the 1024-row full-resolution
# frame // 8 (see the golden README), carried through the dataset's resize and crop.
OFFICIAL_FRAME_ROWS = 1024
OFFICIAL_ROWS_PER_BIN = 8


def official_frame_meta(positions: torch.Tensor, width: int) -> dict:
    """The mmseg metainfo of the crop that the official positions of one sample describe.

    ``positions[y]`` = (row of input row y in the 1024-row frame) // 8. With the frame resized
    by ``scale`` (input rows per frame row) and cropped at ``top``, input row y is frame row
    (y + top) / scale, so a bin spans ``u = 8 * scale`` input rows and bin ``p`` starts at input
    row ``p * u - top``. Both follow from the first and last bin changes, for any crop offset.

    Args:
        positions (Tensor): (H,) official positions of the H input rows.
        width (int): Input width.

    Returns:
        dict: ``ori_shape``, ``img_shape``, ``pad_shape``, ``scale_factor``, ``crop_offset``.
    """
    positions = positions.long()
    changes = (torch.nonzero(positions[1:] != positions[:-1])[:, 0] + 1).tolist()
    assert len(changes) >= 2, f'cannot derive the frame: the rows span < 3 bins: {positions}'
    first, last = changes[0], changes[-1]
    rows_per_bin = (last - first) / float(positions[last] - positions[first])
    scale = rows_per_bin / OFFICIAL_ROWS_PER_BIN
    top = round(float(positions[first]) * rows_per_bin - first)
    height = positions.numel()
    return dict(ori_shape=(OFFICIAL_FRAME_ROWS, round(width / scale)), img_shape=(height, width),
                pad_shape=(height, width), scale_factor=(scale, scale), crop_offset=(top, 0))


def _load(model: torch.nn.Module, case) -> None:
    missing, unexpected = model.load_state_dict(convert_official_hanet(case.state_dict()),
                                                strict=False)
    assert not unexpected, unexpected
    assert all(k.endswith('num_batches_tracked') for k in missing), missing


def test_fixtures_present():
    assert {'hanet_conv_c64_o48_r8', 'hanet_conv_c40_o24_r4',
            'deepr101v3plusd_hanet_os8_128'} <= {_name(p) for p in CASES}


@pytest.mark.parametrize('path', CASES, ids=_name)
def test_sinusoid_table_matches_official(path):
    """Our frozen table (computed, not loaded) equals every table the reference stored."""
    tables = {k: v for k, v in load_case(path).params.items() if k.endswith('pos_layer.weight')}
    assert tables
    for key, table in tables.items():
        ours = sinusoid_table(*table.shape) + 1
        torch.testing.assert_close(ours, table, rtol=0, atol=1e-6, msg=key)


@pytest.mark.parametrize('path', MODULE_CASES, ids=_name)
def test_hanet_module_golden(path):
    case = load_case(path)
    module = HANet(**official_hanet_kwargs(case.meta['ctor']))
    _load(module, case)
    module.eval()
    x_lower = torch.from_numpy(case.inputs['x_lower'])
    x = torch.from_numpy(case.inputs['out'])
    with torch.no_grad():
        outputs = dict(out=module(x_lower, x, _row_positions(case)),
                       attention=module.attention(x_lower, x.shape[2], _row_positions(case)))
    assert set(outputs) == set(case.outputs)
    for name, value in outputs.items():
        assert_close(case, name, value)


def build_official_model(args: dict) -> torch.nn.Module:
    """Our HANet R-101 config with the official options and stem, BN instead of SyncBN."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(HANET_CONFIG)
    cfg.merge_from_dict(dict(model=dict(
        pretrained=None, backbone=dict(stem_channels=128),
        decode_head=official_hanet_head_kwargs(args))))
    if not args.get('aux_loss', True):
        cfg.model.auxiliary_head = None
    return revert_sync_batchnorm(MODELS.build(cfg.model))


@pytest.mark.parametrize('path', MODEL_CASES, ids=_name)
def test_hanet_model_golden(path):
    case = load_case(path)
    model = build_official_model(case.meta['ctor']['args'])
    _load(model, case)
    model.eval()
    head = model.decode_head
    img = torch.from_numpy(case.inputs['img'])
    # the fixture's own positions, as the official model received them
    positions = _row_positions(case)

    calls = {}
    for placement in head.hanet_placements:
        getattr(head, f'hanet_{placement}').register_forward_hook(
            lambda mod, args, out, p=placement: calls.__setitem__(p, (args, out)))
    with torch.no_grad():
        feats = model.extract_feat(img)
        logits = head.forward(feats, positions)
        outputs = dict(logits=resize(logits, size=img.shape[2:], mode='bilinear',
                                     align_corners=True))
        # official attention_i is the i-th HANet of layer4, aspp, bottleneck, decoder
        for i, placement in enumerate(head.hanet_placements):
            (lower, x, positions), _ = calls[placement]
            outputs[f'attention_{i}'] = getattr(head, f'hanet_{placement}').attention(
                lower, x.shape[2], positions)
        outputs['hanet2_out'] = calls['bottleneck'][1]
    assert set(outputs) == set(case.outputs)
    for name, value in outputs.items():
        assert_close(case, name, value)
    if model.with_auxiliary_head:
        _check_auxiliary_head(model, feats, case.state_dict())


@pytest.mark.parametrize('top', [1, 37, 96])
@pytest.mark.parametrize('path', MODEL_CASES, ids=_name)
def test_golden_positions_with_a_crop_offset_pass_the_meta_path(path, top):
    """A case whose rows start lower in the frame (a crop offset, as in every training crop),
    built from the fixture by cropping its frame at row ``top``, goes through the same
    derivation and meta path as the fixture itself."""
    case = load_case(path)
    positions = _row_positions(case)[:, top:]
    assert positions.min() > 0  # the crop starts below the frame's first row
    width = case.inputs['img'].shape[3]
    metas = [official_frame_meta(p, width) for p in positions]
    assert all(m['crop_offset'] == (top, 0) for m in metas)
    assert torch.equal(batch_row_positions(metas), positions)
    # a meta without the crop offset (the uncropped frame at row 0) cannot describe this case
    no_offset = [{k: v for k, v in m.items() if k != 'crop_offset'} for m in metas]
    assert batch_row_positions(no_offset) is None


def _check_auxiliary_head(model, feats, official):
    """The official ``dsn`` (3x3 conv with bias, BN, ReLU, 1x1) on layer3, computed from the
    official weights, equals our FCNHead with the conv bias folded into the BN."""
    def p(key):
        return official[f'dsn.{key}']

    with torch.no_grad():
        x = F.conv2d(feats[2], p('0.weight'), p('0.bias'), padding=1)
        x = F.batch_norm(x, p('1.running_mean'), p('1.running_var'), p('1.weight'),
                         p('1.bias'), eps=1e-5).relu()
        expected = F.conv2d(x, p('4.weight'), p('4.bias'))
        ours = model.auxiliary_head.forward(feats)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
