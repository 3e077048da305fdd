# Copyright (c) mmaffseg contributors. All rights reserved.
"""mmseg's own tools (the copies shipped in the mmseg package, ``mmseg/.mim/tools``) on our
configs: the CRF wrapper's preprocessing (and its conflicts) under mmseg's ``train.py``, and
the tools whose imports ``tools/install.sh`` provides (TensorBoard logging, ``analyze_logs.py``,
``browse_dataset.py``)."""
import glob
import json
import os
import os.path as osp

import pytest
from helpers import tiny_synthetic_overrides
from tool_runner import (
    REPO,
    cfg_option_args,
    mmseg_tool,
    run_in_one_process,
    run_tool,
    script_outputs,
)
from untrained import QUICKSTARTS, save_untrained, small_test_config

QUICKSTART = osp.join(REPO, QUICKSTARTS['deeplabv3plus'])

#: A hook that prints what the runner's preprocessor makes of each training batch.
PROBE_HOOK = '''
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class PreprocessorProbeHook(Hook):
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        preprocessor = runner.model.data_preprocessor
        inputs = preprocessor(data_batch, True)['inputs']
        print('PROBE', tuple(inputs.shape[-2:]), [round(float(m)) for m in preprocessor.mean],
              flush=True)
'''


def _tiny_train_options(root: str, iters: int = 1) -> dict:
    opts = tiny_synthetic_overrides(root)
    opts.update({'train_cfg.max_iters': iters, 'train_cfg.val_interval': 1000,
                 'default_hooks.checkpoint.interval': 1000, 'default_hooks.logger.interval': 1,
                 'train_dataloader.dataset.pipeline.3.crop_size': (64, 128)})
    return opts


def _crf_config(folder, name: str, top_level: str = '', segmentor: str = '_base_.model') -> str:
    """The DeepLab cards' drop-in on the quick-start (a CRFRefineSegmentor dict without
    ``data_preprocessor``), with the preprocessor probe, ``top_level`` lines and the wrapped
    ``segmentor``."""
    config = folder / f'{name}.py'
    config.write_text(
        f'_base_ = [{QUICKSTART!r}]\n{top_level}'
        f"model = dict(_delete_=True, type='CRFRefineSegmentor', segmentor={segmentor},\n"
        '             crf=dict(iterations=1))\n'
        "custom_imports = dict(imports=['mmaffseg', 'preprocessor_probe'],\n"
        '                      allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='PreprocessorProbeHook')]\n")
    return str(config)


@pytest.mark.slow
def test_crf_wrapper_preprocessor_in_mmseg_train_py(tmp_path, tiny_synthetic_root):
    """mmengine's Runner hands the config's top-level ``data_preprocessor`` to the wrapper's
    dict, which has none. mmseg's train.py (and ours) on the cards' drop-in:

    - a top-level one that differs from the wrapped model's (mmseg's way of customising it)
      and ``--cfg-options model.data_preprocessor.size=...`` were dropped with a warning among
      the log lines: now the build stops, naming both and the fix;
    - the quick-start's top-level one (mmseg's model base: the same settings, no ``size``) with
      the size changed under ``model.segmentor``, and the wrapped model's partial one
      completed by the top-level one (``segmentor=dict(_base_.model,
      data_preprocessor=dict(size=...))``, mmengine's raw KeyError about "type" before) train
      with the wrapped model's settings."""
    (tmp_path / 'preprocessor_probe.py').write_text(PROBE_HOOK)
    plain = _crf_config(tmp_path, 'crf')
    custom_top = _crf_config(
        tmp_path, 'crf_custom_top',
        'data_preprocessor = dict(size=(256, 512), mean=[0, 0, 0], std=[1, 1, 1])\n')
    partial = _crf_config(
        tmp_path, 'crf_partial', 'data_preprocessor = dict(size=(64, 128))\n',
        'dict(_base_.model, data_preprocessor=dict(size=(64, 128)))')
    opts = cfg_option_args(_tiny_train_options(tiny_synthetic_root))

    def train(config, *extra, tool=mmseg_tool('train.py')):
        work = str(tmp_path / 'work' / osp.basename(config))
        return [tool, config, '--work-dir', work, '--cfg-options'] + opts + list(extra)

    argvs = [
        train(custom_top),
        train(plain, 'model.data_preprocessor.size=(64,128)'),
        train(plain, 'model.segmentor.data_preprocessor.size=(64,128)'),
        train(partial),
        train(custom_top, tool=osp.join(REPO, 'tools', 'train.py')),
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ['PYTHONPATH']]))
    full = run_in_one_process(argvs, env=env)
    results = script_outputs(full, len(argvs))
    conflict = ("CRFRefineSegmentor: the wrapper's data_preprocessor sets mean=[0, 0, 0], "
                'std=[1, 1, 1], size=[256, 512] where the wrapped segmentor\'s '
                'model.segmentor.data_preprocessor has mean=[123.675, 116.28, 103.53], '
                'std=[58.395, 57.12, 57.375], size=[128, 256]; set the preprocessing in '
                'model.segmentor.data_preprocessor')
    (ok, out) = results[0]
    assert not ok and conflict in out and 'PROBE' not in out, out[-3000:]
    (ok, out) = results[1]
    assert not ok and ("the wrapper's data_preprocessor sets size=[64, 128] where the wrapped "
                       "segmentor's model.segmentor.data_preprocessor has size=[128, 256]"
                       ) in out and 'PROBE' not in out, out[-3000:]
    for ok, out in results[2:4]:
        assert ok and 'PROBE (64, 128) [124, 116, 104]' in out, out[-3000:]
        assert 'CRFRefineSegmentor: ' not in out  # (no message; the config dump names it)
    (ok, out) = results[4]  # ours: the same message as one line (on stderr, after all scripts)
    assert not ok and out.rstrip().endswith('SystemExit: 2'), out[-3000:]
    assert f'train.py: error: {conflict}' in full


@pytest.mark.slow
def test_tensorboard_analyze_logs_and_browse_dataset_on_a_quickstart(tmp_path,
                                                                    tiny_synthetic_root):
    """What tools/install.sh's ``tools`` extra and the OpenCV pin are for: a TensorBoard event
    file written by mmseg's train.py and read back, mmseg's analyze_logs.py plotting the run's
    scalars.json, and mmseg's browse_dataset.py painting the quick-start's training images."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    config = tmp_path / 'tensorboard.py'
    config.write_text(f'_base_ = [{QUICKSTART!r}]\n'
                      "visualizer = dict(vis_backends=[dict(type='LocalVisBackend'),\n"
                      "                                dict(type='TensorboardVisBackend')])\n")
    opts = _tiny_train_options(tiny_synthetic_root, iters=2)
    opts['train_cfg.val_interval'] = 2
    work = tmp_path / 'work'
    run_tool([mmseg_tool('train.py'), str(config), '--work-dir', str(work), '--cfg-options'] +
             cfg_option_args(opts))
    (scalars, ) = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    (events, ) = glob.glob(str(work / '*' / 'vis_data' / 'events.out.tfevents.*'))
    with open(scalars, encoding='utf-8') as f:
        logged = [json.loads(line) for line in f]
    losses = {row['step']: row['loss'] for row in logged if 'loss' in row}
    assert sorted(losses) == [1, 2]
    board = EventAccumulator(events)
    board.Reload()
    read_back = {e.step: e.value for e in board.Scalars('loss')}
    assert read_back.keys() == losses.keys()
    assert all(abs(read_back[k] - losses[k]) < 1e-5 * max(1.0, abs(losses[k])) for k in losses)
    assert 'mIoU' in board.Tags()['scalars']

    plot, pictures = tmp_path / 'loss.png', tmp_path / 'browse'
    data = {k: v for k, v in tiny_synthetic_overrides(tiny_synthetic_root).items()
            if k.startswith('train_dataloader.dataset.')}
    out = run_in_one_process([
        [mmseg_tool('analysis_tools/analyze_logs.py'), scalars, '--keys', 'loss', 'mIoU',
         '--backend', 'Agg', '--out', str(plot)],
        [mmseg_tool('misc/browse_dataset.py'), QUICKSTART, '--output-dir', str(pictures),
         '--not-show', '--cfg-options'] + cfg_option_args(data),
    ])
    assert '==> script 0: ok' in out and '==> script 1: ok' in out, out[-3000:]
    assert f'save curve to: {plot}' in out and plot.stat().st_size > 0
    painted = glob.glob(str(pictures / 'vis_data' / 'vis_image' / '*.png'))
    assert len(painted) == 6, out[-3000:]  # one per training image


@pytest.mark.slow
def test_mmseg_inferencer_and_visualizer_name_the_alternative_for_embeddings(
        tmp_path, tiny_synthetic_root):
    """mmseg's MMSegInferencer on the semantic-features family (a bare StopIteration before)
    and mmseg's test.py --show-dir with mmseg's SegLocalVisualizer on instance embedding (a
    cv2 "!_src.empty()" error before) stop with the documented alternative."""
    paths = {}
    for family in ('semantic-features', 'instance-embedding'):
        cfg = small_test_config(QUICKSTARTS[family])
        cfg.visualizer.type = 'SegLocalVisualizer'
        paths[family] = (str(tmp_path / f'{family}.py'), str(tmp_path / f'{family}.pth'))
        cfg.dump(paths[family][0])
        save_untrained(cfg, paths[family][1])
    image = sorted(glob.glob(osp.join(tiny_synthetic_root, 'leftImg8bit/val/*/*.png')))[0]
    argv = [mmseg_tool('test.py'), *paths['instance-embedding'], '--show-dir',
            str(tmp_path / 'painted'), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
            'default_hooks.visualization.interval=1'
            ] + cfg_option_args(tiny_synthetic_overrides(tiny_synthetic_root))
    out = run_tool(['-c', (
        'import runpy, sys\n'
        f'sys.argv = {argv!r}\n'
        'try:\n'
        '    runpy.run_path(sys.argv[0], run_name="__main__")\n'
        'except ValueError as e:\n'
        '    print("TEST.PY", e)\n'
        'from mmseg.apis import MMSegInferencer\n'
        f'inferencer = MMSegInferencer(*{paths["semantic-features"]!r}, device="cpu")\n'
        'try:\n'
        f'    inferencer({image!r})\n'
        'except ValueError as e:\n'
        '    print("INFERENCER", e)\n'
        f'sample = inferencer({image!r}, return_datasamples=True)\n'
        'print("DATASAMPLE", tuple(sample.seg_logits.data.shape))\n')])
    assert ("TEST.PY mmseg's SegLocalVisualizer cannot paint instances (pred_instances), which "
            "this model predicts: set visualizer = dict(type='AffSegLocalVisualizer')"
            ) in out, out[-3000:]
    assert ('INFERENCER MMSegInferencer returns only label and depth maps as arrays; this model '
            'predicts an embedding (seg_logits without pred_sem_seg): call the inferencer with '
            'return_datasamples=True') in out, out[-3000:]
    assert 'DATASAMPLE (32, 64, 128)' in out
