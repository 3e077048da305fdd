# Copyright (c) mmaffseg contributors. All rights reserved.
"""The documentation site builds with Sphinx, warnings as errors (the README's command), and its
API reference documents every name mmaffseg's packages export."""
import ast
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOCS = osp.join(REPO, 'docs')
PACKAGE = osp.join(REPO, 'mmaffseg')
DOCS_EXTRA = 'the docs extra is not installed (pip install -e ".[docs]", or bash tools/install.sh)'


def _automodules() -> list:
    with open(osp.join(DOCS, 'api.rst'), encoding='utf-8') as f:
        return re.findall(r'^\.\. automodule:: (\S+)$', f.read(), flags=re.M)


def _exports(module: str) -> list:
    """The ``__all__`` of a package of this checkout, read from its source (None: none)."""
    path = osp.join(REPO, *module.split('.'), '__init__.py')
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == '__all__' for t in node.targets):
            return [ast.literal_eval(e) for e in node.value.elts]
    return None


def _packages() -> list:
    """Every package of mmaffseg (dotted names), the top level excluded."""
    found = []
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if not d.startswith(('.', '__')))
        if '__init__.py' in files and root != PACKAGE:
            found.append(osp.relpath(root, REPO).replace(os.sep, '.'))
    return sorted(found)


def test_api_reference_covers_every_package():
    """A package exporting names has an ``automodule`` entry; one exporting nothing (e.g.
    ``models.utils``) has one for each of its modules."""
    documented = set(_automodules())
    missing = []
    for package in _packages():
        if package in documented:
            continue
        if _exports(package):
            missing.append(package)
        elif package == 'mmaffseg.models' or any(
                m.startswith(package + '.') for m in documented):
            continue  # documented through its sub-packages or modules
        else:
            missing.append(package)
    assert missing == [], f'add these to docs/api.rst: {missing}'


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    for module in ('sphinx', 'myst_parser', 'sphinx_rtd_theme'):
        pytest.importorskip(module, reason=DOCS_EXTRA)
    html = tmp_path / 'html'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-b', 'html', '-d',
         str(tmp_path / 'doctrees'), DOCS, str(html)],
        cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]

    for page in ('index', 'api', 'changelog', 'inference', 'tools', 'installation'):
        assert (html / f'{page}.html').is_file(), page
    api = (html / 'api.html').read_text(encoding='utf-8')
    anchors = set(re.findall(r'id="(mmaffseg\.[\w.]+)"', api))
    undocumented = [f'{module}.{name}' for module in _automodules()
                    for name in _exports(module) or [] if f'{module}.{name}' not in anchors]
    assert undocumented == [], undocumented
    # napoleon turned the Google-style sections into fields
    assert 'Parameters' in api and 'Returns' in api
    changelog = (html / 'changelog.html').read_text(encoding='utf-8')
    assert 'Performance' in changelog and 'Reliability' in changelog
