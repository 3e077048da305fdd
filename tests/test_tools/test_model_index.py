# Copyright (c) mmaffseg contributors. All rights reserved.
"""configs/<method>/metafile.yaml and the model-index.yml that setup.py writes from them."""
import glob
import os
import os.path as osp
import runpy

import pytest
import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
# configs/benchmark holds a protocol (one config per method, trained by
# tools/benchmark_suite.py), not published models: it has no metafile
NOT_MODELS = ('_base_', 'benchmark')
FOLDERS = sorted(f for f in os.listdir(CONFIGS)
                 if f not in NOT_MODELS and glob.glob(osp.join(CONFIGS, f, '*.py')))


def _model_index() -> dict:
    setup = runpy.run_path(osp.join(REPO, 'setup.py'), run_name='mmaffseg_setup')
    return yaml.safe_load(setup['model_index']())


def test_model_index_imports_a_metafile_per_config_folder():
    imports = _model_index()['Import']
    assert imports == [f'configs/{f}/metafile.yaml' for f in FOLDERS]


def _numbers(text: str) -> str:
    return text.replace('**', '')


@pytest.mark.parametrize('folder', FOLDERS)
def test_metafile_lists_every_config_with_measured_metrics_only(folder):
    with open(osp.join(CONFIGS, folder, 'metafile.yaml'), encoding='utf-8') as f:
        meta = yaml.safe_load(f)
    (collection, ) = meta['Collections']
    assert collection['Paper']['Title'] and collection['Paper']['URL'].startswith('https://')
    readme = osp.join(REPO, collection['README'])
    with open(readme, encoding='utf-8') as f:
        readme_text = _numbers(f.read())
    configs = sorted(f'configs/{folder}/{osp.basename(p)}'
                     for p in glob.glob(osp.join(CONFIGS, folder, '*.py')))
    models = meta['Models']
    assert sorted(m['Config'] for m in models) == configs
    for model in models:
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
        assert model['In Collection'] == collection['Name']
        assert osp.isfile(osp.join(REPO, model['Code'])), model['Code']
        results = model.get('Results')
        if results is None:
            continue
        # measured numbers only: each is in the README, on the dataset it was measured on
        assert 'quickstart' in model['Name'] and results['Dataset'].startswith('Synthetic')
        for name, value in results['Metrics'].items():
            assert f'{value:.2f}' in readme_text or f'{value:.4f}' in readme_text, (name, value)


def _load_index(tmp_path):
    """The index as mim reads it (``modelindex.load``), over a copy laid out like .mim."""
    modelindex = pytest.importorskip('modelindex')
    mim = tmp_path / '.mim'
    mim.mkdir()
    os.symlink(CONFIGS, mim / 'configs')
    (mim / 'model-index.yml').write_text(
        runpy.run_path(osp.join(REPO, 'setup.py'), run_name='mmaffseg_setup')['model_index']())
    return modelindex.load(str(mim / 'model-index.yml'))


def test_modelindex_reads_the_index(tmp_path):
    index = _load_index(tmp_path)
    names = {m.name for m in index.models}
    assert 'hanet_r18-d16_quickstart_synthetic-128x256' in names
    assert len(names) == sum(len(glob.glob(osp.join(CONFIGS, f, '*.py'))) for f in FOLDERS)


def test_mim_search_keys_leave_room_for_values_at_80_columns(tmp_path):
    """``mim search`` (openmim 0.3.9's ``print_df``) prints each model as ``key value`` lines
    80 columns wide, values cut to ``80 - (longest key + 2)``; its keys are the metadata
    fields and ``<dataset>/<metric>`` of every result, lower-cased. A long dataset name left
    no room: every value printed as nothing or "...". Keys must leave values 30 columns."""
    keys = set()
    for model in _load_index(tmp_path).models:
        keys |= {'_'.join(k.lower().split()) for k in model.metadata.data}
        for result in model.results or []:
            keys |= {f'{result.dataset.lower()}/{"_".join(m.lower().split())}'
                     for m in result.metrics}
    longest = max(keys, key=len)
    assert len(longest) + 2 <= 80 - 30, longest
