# Copyright (c) mmaffseg contributors. All rights reserved.
"""A misspelt ``--cfg-options`` key fails early, naming it (mmaffseg/cli/cfg_options.py).

It was a raw TypeError traceback from deep inside the builder (``num_clases``), or, for a tool
that stops earlier for another reason, never reported at all (``max_iter``).
"""
import glob
import os.path as osp

import pytest

from mmaffseg.cli import load_config
from mmaffseg.utils.config_errors import ConfigCheckError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
QUICKSTART = 'configs/quickstart/deeplabv3plus_r18-d16_quickstart_synthetic-128x256.py'


@pytest.mark.parametrize('tool, option, suggestion', [
    ('train.py', 'model.decode_head.num_clases=3', 'model.decode_head.num_classes'),
    ('test.py', 'train_cfg.max_iter=2', 'train_cfg.max_iters'),
    ('analysis_tools/get_flops.py', 'model.backbone.dept=50', 'model.backbone.depth'),
])
def test_tools_reject_a_misspelt_cfg_options_key(tool, option, suggestion, tiny_synthetic_root,
                                                 tmp_path):
    from helpers import tiny_synthetic_overrides
    from tool_runner import cfg_option_args, run_tool
    argv = [osp.join('tools', tool), QUICKSTART]
    if tool == 'test.py':
        argv.append(str(tmp_path / 'never_read.pth'))  # the options are checked first
    if tool != 'analysis_tools/get_flops.py':
        argv += ['--work-dir', str(tmp_path / 'work')]
    argv += ['--cfg-options', option] + cfg_option_args(
        tiny_synthetic_overrides(tiny_synthetic_root))
    out = run_tool(argv, expect=2, timeout=300)
    key = option.split('=')[0]
    last = out.strip().splitlines()[-1]
    assert last.startswith(f'{osp.basename(tool)}: error: --cfg-options {key}: '), out[-3000:]
    assert f'Did you mean {suggestion}' in last, last
    assert 'Traceback' not in out, out[-3000:]


def test_load_config_names_the_key_and_close_matches():
    with pytest.raises(ConfigCheckError, match=r"--cfg-options train_cfg\.max_iter: train_cfg "
                       r"\(IterBasedTrainLoop\) has no setting 'max_iter', and "
                       r'IterBasedTrainLoop takes no such argument\. Did you mean '
                       r'train_cfg\.max_iters'):
        load_config(osp.join(REPO, QUICKSTART), {'train_cfg.max_iter': 2})
    # nested dicts (load_config's callers) are merged, and checked, key by key; list items too
    with pytest.raises(ConfigCheckError, match=r'model\.decode_head\.num_clases: .*Did you '
                       r'mean model\.decode_head\.num_classes\?'):
        load_config(osp.join(REPO, QUICKSTART), dict(model=dict(decode_head=dict(num_clases=3))))
    with pytest.raises(ConfigCheckError, match=r'param_scheduler\.0 \(LinearLR\) has no '
                       r"setting 'ed'.*param_scheduler\.0\.end"):
        load_config(osp.join(REPO, QUICKSTART), {'param_scheduler.0.ed': 10})


def test_load_config_still_accepts_new_keys():
    """New keys are legitimate: where the parent is not registry-built, where nothing existing
    is close, and an argument of the class that the config leaves at its default even when it
    is close to an existing key (conv_cfg / norm_cfg)."""
    cfg = load_config(osp.join(REPO, QUICKSTART), {
        'model.test_cfg.mode': 'slide',  # test_cfg has no type
        'my_new_key': 1,  # top level
        'train_cfg.val_begin': 2,  # nothing close
        'model.decode_head.conv_cfg': None,  # close to norm_cfg, but an argument of the head
        'model.decode_head.type': 'FCNHead',  # a new type: its arguments count
        'model.decode_head.num_convs': 1,
    })
    assert cfg.model.test_cfg.mode == 'slide' and cfg.my_new_key == 1
    assert cfg.train_cfg.val_begin == 2 and cfg.model.decode_head.conv_cfg is None
    assert cfg.model.decode_head.num_convs == 1


@pytest.mark.parametrize('config, option', [
    *[(c, f'test_cfg.{k}') for c in glob.glob('configs/psa/psa-pseudo-labels_*.py')
      for k in ('rw_beta', 'rw_alpha', 'low_alpha', 'high_alpha')],
    ('configs/deeplabv1/deeplabv1-crf_vgg16-slim-largefov_quickstart_synthetic-128x256.py',
     'model.crf.bilateral_sxy'),
    ('configs/deeplabv2/deeplabv2-crf_r18-d8_quickstart_synthetic-128x256.py',
     'model.crf.gaussian_compat'),
])
def test_a_fraction_is_accepted_for_the_float_settings_of_every_config(config, option):
    """The configs write their float-valued settings (PSA's alphas / beta, the CRF's kernel
    widths and weights) as floats: a fractional value is accepted in every config, not only in
    the ones that leave the default."""
    cfg = load_config(config, {option: 7.5})
    node = cfg
    for key in option.split('.'):
        node = node[key]
    assert node == 7.5
