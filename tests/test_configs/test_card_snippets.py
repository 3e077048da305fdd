# Copyright (c) mmaffseg contributors. All rights reserved.
"""Every config snippet of the model cards (``configs/*/README.md``) runs, unchanged, in mmseg's
own ``tools/train.py`` and ``tools/test.py`` (the copies shipped in the mmseg package).

mmseg's tools parse ``_base_`` before the config's ``custom_imports``, so a snippet must not
inherit through ``mmaffseg::``. The snippets inherit mmseg's Cityscapes / VOC configs, whose data
is not here: the runs point the datasets at the tiny synthetic data and shrink crops, scales and
the preprocessor's ``size`` through ``--cfg-options`` (derived from each snippet's own config),
and train 2 iterations from random weights.
"""
import glob
import os.path as osp
import re

import cv2
import pytest
from mmengine.config import Config
from tool_runner import (
    REPO,
    cfg_option_args,
    mmseg_tool,
    run_in_one_process,
    run_tool,
    script_outputs,
)

from mmaffseg.datasets.cityscapes_labels import CITYSCAPES_CLASSES

TINY_CROP = (32, 64)  # (h, w)
TINY_SCALE = (64, 32)  # (w, h), as mmcv's Resize takes it
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
#: Settings that only make a run cheaper (no effect on whether the snippet works): the paper's
#: 3 x 1000 pixels x 10 draws of the N-pair loss are most of a 2-iteration run on CPU.
CHEAPER = {'model.decode_head.loss_decode.num_pixels': 50,
           'model.decode_head.loss_decode.num_resamples': 1}


def card_snippets() -> dict:
    """``<card>[_<n>]`` -> the text of each ```python block of ``configs/<card>/README.md``."""
    snippets = {}
    for readme in sorted(glob.glob(osp.join(REPO, 'configs', '*', 'README.md'))):
        card = osp.basename(osp.dirname(readme))
        with open(readme, encoding='utf-8') as f:
            blocks = re.findall(r'^```python\n(.*?)^```$', f.read(), flags=re.S | re.M)
        for i, block in enumerate(blocks):
            snippets[card if len(blocks) == 1 else f'{card}_{i}'] = block
    return snippets


SNIPPETS = card_snippets()


def test_every_drop_in_card_has_its_snippet_found():
    cards = {name.split('_')[0] if name.startswith('spnet') else name for name in SNIPPETS}
    assert {'cpnet', 'deeplabv1', 'deeplabv2', 'dsrl', 'hanet', 'instance_embedding', 'psa',
            'semantic_features', 'spnet'} <= cards, sorted(SNIPPETS)


def _write_snippets(folder) -> dict:
    """Each snippet saved as ``<folder>/<name>.py``; name -> path."""
    paths = {}
    for name, text in SNIPPETS.items():
        paths[name] = str(folder / f'{name}.py')
        (folder / f'{name}.py').write_text(text)
    return paths


def test_snippets_inherit_only_what_mmseg_tools_parse(tmp_path):
    """mmengine alone loads every snippet before its ``custom_imports`` are imported, as
    mmseg's tools parse ``_base_`` (so no ``mmaffseg::`` scope)."""
    paths = _write_snippets(tmp_path)
    out = run_tool(['-c', (
        'import sys\n'
        'from mmengine.config import Config\n'
        f'for name, path in sorted({paths!r}.items()):\n'
        '    try:\n'
        '        cfg = Config.fromfile(path, import_custom_modules=False)\n'
        '        print("loaded", name, cfg.model.type)\n'
        '    except Exception as e:\n'
        '        print("FAILED", name, type(e).__name__, e)\n'
        'assert "mmaffseg" not in sys.modules\n')])
    failed = [line for line in out.splitlines() if line.startswith('FAILED')]
    assert not failed, failed
    assert all(f'loaded {name} ' in out for name in SNIPPETS), out[-3000:]


def _walk(node, path=''):
    """(dotted key, dict) of every dict under ``node``, lists indexed as mmengine's keys."""
    if isinstance(node, dict):
        yield path, node
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(node))
    else:
        return
    for key, value in items:
        yield from _walk(value, f'{path}.{key}' if path else str(key))


def tiny_overrides(cfg: Config, roots: dict) -> dict:
    """``--cfg-options`` that run ``cfg`` for 2 iterations on the tiny synthetic data.

    Args:
        cfg (Config): The snippet's config.
        roots (dict): Dataset type -> the data root to use for it.
    """
    opts = {'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
            'default_hooks.checkpoint.interval': 2, 'default_hooks.logger.interval': 1,
            'train_dataloader.batch_size': 2, 'randomness.seed': 0}
    pseudo_labels = cfg.get('pseudo_label_dir')
    for key, node in _walk(cfg.to_dict()):
        top = key.split('.', 1)[0]
        if top in LOADERS and 'type' in node and node['type'] in roots:
            opts[f'{key}.data_root'] = roots[node['type']]
            seg = node.get('data_prefix', {}).get('seg_map_path')
            if pseudo_labels and seg == pseudo_labels:
                opts[f'{key}.data_prefix.seg_map_path'] = roots['pseudo_labels']
        if top in LOADERS and key.count('.') == 0:
            opts[f'{key}.num_workers'] = 0
            opts[f'{key}.persistent_workers'] = False
        if isinstance(node.get('scale'), (list, tuple)):
            opts[f'{key}.scale'] = TINY_SCALE
        for size in ('crop_size', 'size'):  # RandomCrop, Pad (mmseg's VOC pipelines)
            if isinstance(node.get(size), (list, tuple)) and key.startswith(LOADERS):
                opts[f'{key}.{size}'] = TINY_CROP
        if key.endswith('data_preprocessor') and node.get('size'):
            opts[f'{key}.size'] = TINY_CROP
        if node.get('pretrained'):
            opts[f'{key}.pretrained'] = None
        if isinstance(node.get('init_cfg'), dict) and node['init_cfg'].get('type') == 'Pretrained':
            opts[f'{key}.init_cfg'] = None
    if cfg.get('data_preprocessor', {}).get('size'):
        opts['data_preprocessor.size'] = TINY_CROP
    loss = cfg.model.get('decode_head', {}).get('loss_decode', {})
    if isinstance(loss, dict) and loss.get('type') == 'NPairL2Loss':
        opts.update(CHEAPER)
    return opts


def _voc_layout(cityscapes_root: str, out) -> dict:
    """The tiny synthetic images as a Pascal VOC 2012 (+ Aug) folder, and PSA-style pseudo
    labels (the synthetic trainIds, all below VOC's 21 classes)."""
    voc, pseudo = out / 'VOC2012', out / 'rw_crf'
    for folder in ('JPEGImages', 'SegmentationClass', 'SegmentationClassAug',
                   'ImageSets/Segmentation'):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    pseudo.mkdir()
    names = []
    for split in ('train', 'val'):
        for img in sorted(glob.glob(osp.join(cityscapes_root, 'leftImg8bit', split, '*', '*.png'))):
            name = osp.basename(img).replace('_leftImg8bit.png', '')
            seg = img.replace('leftImg8bit', 'gtFine', 1).replace(
                '_leftImg8bit.png', '_gtFine_labelTrainIds.png')
            label = cv2.imread(seg, cv2.IMREAD_UNCHANGED)
            assert label.max() < len(CITYSCAPES_CLASSES) or label.max() == 255
            cv2.imwrite(str(voc / 'JPEGImages' / f'{name}.jpg'), cv2.imread(img))
            for folder in (voc / 'SegmentationClass', voc / 'SegmentationClassAug', pseudo):
                cv2.imwrite(str(folder / f'{name}.png'), label)
            names.append((split, name))
    for ann, splits in (('train', ('train', )), ('aug', ('train', )), ('val', ('val', ))):
        (voc / 'ImageSets/Segmentation' / f'{ann}.txt').write_text(
            ''.join(f'{n}\n' for s, n in names if s in splits))
    return {'PascalVOCDataset': str(voc), 'pseudo_labels': str(pseudo)}


@pytest.mark.slow
def test_snippets_train_and_test_in_mmseg_tools(tmp_path, tiny_synthetic_root):
    """mmseg's train.py (2 iterations) then test.py on its checkpoint, for every snippet, all
    in one interpreter (one import of torch / mmseg for the ten runs)."""
    paths = _write_snippets(tmp_path)
    roots = {'CityscapesDataset': tiny_synthetic_root}
    roots.update(_voc_layout(tiny_synthetic_root, tmp_path / 'voc'))
    argvs = []
    for name in sorted(SNIPPETS):
        opts = cfg_option_args(tiny_overrides(Config.fromfile(paths[name]), roots))
        work = str(tmp_path / 'work' / name)
        argvs += [
            [mmseg_tool('train.py'), paths[name], '--work-dir', work, '--cfg-options'] + opts +
            [f'visualizer.name={name}_train'],
            [mmseg_tool('test.py'), paths[name], osp.join(work, 'iter_2.pth'), '--work-dir', work,
             '--cfg-options'] + opts + [f'experiment_name={name}_test',
                                        f'visualizer.name={name}_test'],
        ]
    results = script_outputs(run_in_one_process(argvs), len(argvs))
    failed = []
    for i, name in enumerate(sorted(SNIPPETS)):
        (train_ok, train), (test_ok, test) = results[2 * i:2 * i + 2]
        if not (train_ok and 'Iter(train) [2/2]' in train):
            failed.append(f'{name} train.py:\n{train[-2500:]}')
        elif not (test_ok and 'Load checkpoint from' in test and 'Iter(test) [3/3]' in test):
            failed.append(f'{name} test.py:\n{test[-2500:]}')
    assert not failed, '\n\n'.join(failed)
