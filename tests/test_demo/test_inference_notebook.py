# Copyright (c) mmaffseg contributors. All rights reserved.
"""demo/inference_demo.ipynb runs top to bottom in a fresh kernel, offline, from the repository
root (as a user runs it), and shows what it says it shows; started in demo/ of a checkout whose
mmaffseg is not importable otherwise, it imports the checkout's."""
import os.path as osp

import nbformat
import pytest
from nbclient import NotebookClient

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NOTEBOOK = osp.join(REPO, 'demo', 'inference_demo.ipynb')


def _text(cell) -> str:
    return ''.join(o.get('text', '') for o in cell.outputs if o.output_type == 'stream')


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_inference_notebook_runs(tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv('TMPDIR', str(tmp_path))  # the notebook's work folder (tempfile)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    NotebookClient(nb, timeout=600, kernel_name='python3',
                   resources={'metadata': {'path': REPO}}).execute()  # raises on a failing cell

    text = '\n'.join(_text(c) for c in nb.cells if c.cell_type == 'code')
    assert 'prediction (128, 256) for an image of (128, 256)' in text, text
    # the untrained checkpoint it saved has no class names: they come from the config's dataset
    assert 'with 19 classes: road, sidewalk, building' in text, text
    # the painted image was written into the work folder and displayed
    painted = list(tmp_path.glob('mmaffseg_inference_demo_*/street_painted.png'))
    assert len(painted) == 1
    assert any('image/png' in o.get('data', {}) for c in nb.cells if c.cell_type == 'code'
               for o in c.outputs)


def test_notebook_started_in_demo_imports_the_checkouts_mmaffseg(tmp_path, monkeypatch):
    """The notebook's set-up cells, started in demo/ with an mmaffseg on PYTHONPATH that cannot
    be imported (as for a checkout neither installed nor on PYTHONPATH): they move to the root
    and import the checkout's mmaffseg."""
    shadow = tmp_path / 'shadow' / 'mmaffseg'
    shadow.mkdir(parents=True)
    (shadow / '__init__.py').write_text("raise ImportError('not this checkout')\n")
    monkeypatch.setenv('PYTHONPATH', str(shadow.parent))
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == 'code']
    nb.cells = nb.cells[:code[1] + 1]  # the warnings and the imports cells
    NotebookClient(nb, timeout=300, kernel_name='python3',
                   resources={'metadata': {'path': osp.join(REPO, 'demo')}}).execute()
    text = _text(nb.cells[code[1]])
    assert f"from {osp.join(REPO, 'mmaffseg')} |" in text, text
