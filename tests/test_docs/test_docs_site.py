# Copyright (c) mmaffseg contributors. All rights reserved.
"""The documentation site builds with Sphinx, warnings as errors and none suppressed (the
README's command); it has the README, the changelog and every Markdown file of configs/ (the
model cards) as pages with working links between them, and its API reference documents every
public module of mmaffseg, every name its packages export and every ``mmaffseg.*`` name the
pages cite."""
import ast
import importlib
import inspect
import os
import os.path as osp
import re
import subprocess
import sys
from html import unescape

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOCS = osp.join(REPO, 'docs')
PACKAGE = osp.join(REPO, 'mmaffseg')
DOCS_EXTRA = 'the docs extra is not installed (pip install -e ".[docs]", or bash tools/install.sh)'
#: ``mmaffseg.*`` names cited in the pages that are not Python objects of the reference.
NOT_IN_REFERENCE = set()


def _load_ext(name: str):
    spec = importlib.util.spec_from_file_location(name, osp.join(DOCS, '_ext', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _public_modules() -> list:
    """Every module and package of mmaffseg (dotted names) with no part starting with '_'."""
    found = []
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if not d.startswith(('_', '.'))]
        if '__init__.py' not in files:
            dirs[:] = []
            continue
        package = osp.relpath(root, REPO).replace(os.sep, '.')
        found.append(package)
        found += [f'{package}.{f[:-3]}' for f in files
                  if f.endswith('.py') and not f.startswith('_')]
    return sorted(found)


def _site_markdown() -> list:
    """The Markdown files the site shows: docs/*.md, README, CHANGELOG, configs/*/*.md."""
    files = [osp.join(DOCS, f) for f in sorted(os.listdir(DOCS)) if f.endswith('.md')]
    files += [osp.join(REPO, 'README.md'), osp.join(REPO, 'CHANGELOG.md')]
    return files + [osp.join(REPO, p) for p in _model_zoo_files()]


def _model_zoo_files() -> list:
    configs = osp.join(REPO, 'configs')
    return sorted(f'configs/{d}/{f}' for d in os.listdir(configs)
                  if osp.isdir(osp.join(configs, d)) and not d.startswith('_')
                  for f in os.listdir(osp.join(configs, d)) if f.endswith('.md'))


def test_no_warning_is_suppressed():
    """docs/conf.py suppresses no warning (it hid every dead link of the pages)."""
    with open(osp.join(DOCS, 'conf.py'), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    suppressed = [ast.literal_eval(node.value) for node in tree.body
                  if isinstance(node, ast.Assign)
                  and any(getattr(t, 'id', None) == 'suppress_warnings' for t in node.targets)]
    assert suppressed in ([], [[]]), suppressed


def test_links_are_rewritten_for_the_site(tmp_path):
    """A card's links: to a page (a folder with a README too) -> that page; an image -> its
    path from the page; any other repository file -> its repository path as code; external
    links, anchors, code and missing paths unchanged."""
    repo_pages = _load_ext('repo_pages')
    repo = tmp_path / 'repo'
    for path in ('configs/hanet/README.md', 'configs/hanet/benchmarks.md', 'configs/hanet/x.py',
                 'configs/hanet/plot.png', 'tools/train.py', 'docs/tools.md', 'README.md',
                 'LICENSE'):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text('# T\n')
    srcdir = str(repo / 'docs')
    pages = {'configs/hanet/README.md': 'model_zoo/hanet/README', 'README.md': 'quick_start',
             'configs/hanet/benchmarks.md': 'model_zoo/hanet/benchmarks',
             'docs/tools.md': 'tools'}
    card = ('[bench](benchmarks.md#results) [x.py](x.py) [the config](x.py) '
            '[`tools/train.py`](../../tools/train.py) [tools](../../docs/tools.md#a) '
            '[hanet](../hanet) [license](../../LICENSE) ![plot](plot.png) '
            '[web](https://x.org/a.md) [here](#usage) [gone](gone.md) `[no](x.py)`\n'
            '```\n[fenced](x.py)\n```\n')
    out = repo_pages.rewrite_links(card, 'configs/hanet/README.md', 'model_zoo/hanet/README',
                                   srcdir, str(repo), pages)
    assert out == ('[bench](benchmarks.md#results) `configs/hanet/x.py` '
                   'the config (`configs/hanet/x.py`) `tools/train.py` '
                   '[tools](../../tools.md#a) [hanet](README.md) license (`LICENSE`) '
                   '![plot](../../../configs/hanet/plot.png) [web](https://x.org/a.md) '
                   '[here](#usage) [gone](gone.md) `[no](x.py)`\n'
                   '```\n[fenced](x.py)\n```\n')
    page = repo_pages.rewrite_links(
        '[README](../README.md#set-up) [hanet](../configs/hanet/) [tools/](../tools)\n',
        'docs/tools.md', 'tools', srcdir, str(repo), pages)
    assert page == '[README](quick_start.md#set-up) [hanet](model_zoo/hanet/README.md) ' \
        '`tools/`\n'


def test_model_zoo_pages_cover_every_configs_markdown_file():
    repo_pages = _load_ext('repo_pages')
    pages = repo_pages.model_zoo_pages(REPO)
    assert sorted(pages) == sorted(f'model_zoo/{p[len("configs/"):]}'
                                   for p in _model_zoo_files())
    readme = pages['model_zoo/instance_embedding/README.md']
    assert readme.startswith('```{include} ../../../configs/instance_embedding/README.md\n')
    assert ':hidden:\n\nbenchmarks\ncityscapes_evaluation\n' in readme


def test_api_pages_cover_every_public_module(tmp_path):
    """The API reference's pages: one per public module, found by walking the package (private
    modules and folders without __init__.py left out); a package's page lists its modules."""
    api_pages = _load_ext('api_pages')
    pkg = tmp_path / 'pkg'
    for path in ('__init__.py', 'a.py', '_private.py', 'sub/__init__.py', 'sub/b.py',
                 '_hidden/__init__.py', 'data/notes.py'):
        (pkg / path).parent.mkdir(parents=True, exist_ok=True)
        (pkg / path).write_text('')
    assert api_pages.public_modules(str(pkg)) == {
        'pkg': ['pkg.a', 'pkg.sub'], 'pkg.a': [], 'pkg.sub': ['pkg.sub.b'], 'pkg.sub.b': []}
    assert sorted(api_pages.public_modules(PACKAGE)) == _public_modules()
    assert '.. automodule:: pkg.sub\n   :ignore-module-all:\n' in api_pages.module_page(
        'pkg.sub', ['pkg.sub.b'])


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """The site, built once with the README's command (warnings as errors): (html folder, the
    names of its Python objects by role)."""
    for module in ('sphinx', 'myst_parser', 'sphinx_rtd_theme'):
        pytest.importorskip(module, reason=DOCS_EXTRA)
    from sphinx.util.inventory import InventoryFile
    out = tmp_path_factory.mktemp('docs')
    html = out / 'html'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-b', 'html', '-d',
         str(out / 'doctrees'), DOCS, str(html)],
        cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    with open(html / 'objects.inv', 'rb') as f:
        inventory = InventoryFile.load(f, '', osp.join)
    items = inventory.data.items() if hasattr(inventory, 'data') else inventory.items()
    return html, {role: set(names) for role, names in items}


@pytest.mark.slow
def test_docs_build_without_warnings(site):
    html, _ = site
    for page in ('index', 'api', 'changelog', 'inference', 'tools', 'installation',
                 'quick_start', 'model_zoo'):
        assert (html / f'{page}.html').is_file(), page
    # napoleon turned the Google-style sections into fields
    api = (html / 'api' / 'mmaffseg.apis.inference.html').read_text(encoding='utf-8')
    assert 'Parameters' in api and 'Returns' in api
    changelog = (html / 'changelog.html').read_text(encoding='utf-8')
    assert 'Performance' in changelog and 'Reliability' in changelog


def _unquoted(text: str) -> str:
    return re.sub('[\'"\u2018\u2019\u201c\u201d]', '', text)  # Sphinx's smart quotes


@pytest.mark.slow
def test_readme_and_every_model_card_are_pages_with_working_links(site):
    html, _ = site
    for path in _model_zoo_files():
        page = html / 'model_zoo' / (path[len('configs/'):-3] + '.html')
        assert page.is_file(), f'{path} is not a page of the site'
        with open(osp.join(REPO, path), encoding='utf-8') as f:
            title = f.readline().lstrip('#').strip()
        h1 = re.search(r'<h1>([^<]*)', page.read_text(encoding='utf-8')).group(1)
        assert _unquoted(unescape(h1)) == _unquoted(title), path
    zoo = (html / 'model_zoo.html').read_text(encoding='utf-8')
    for path in _model_zoo_files():
        if path.endswith('/README.md'):
            assert f'href="model_zoo/{path[len("configs/"):-3]}.html"' in zoo, path
    readme = (html / 'quick_start.html').read_text(encoding='utf-8')
    assert 'Quick-start' in readme
    assert 'href="model_zoo/hanet/README.html"' in readme  # [configs/hanet](configs/hanet)
    assert 'href="inference.html"' in readme  # [Inference](docs/inference.md)
    card = (html / 'model_zoo' / 'hanet' / 'README.html').read_text(encoding='utf-8')
    assert 'href="benchmarks.html' in card  # its second page
    assert '<span class="pre">configs/hanet/hanet_r18-d16_quickstart_synthetic-128x256.py' \
        '</span>' in card  # a config: its repository path, as code
    tools = (html / 'tools.html').read_text(encoding='utf-8')
    assert 'href="changelog.html"' in tools  # [CHANGELOG](../CHANGELOG.md)
    # no link left unresolved (MyST renders those as plain 'xref myst' text)
    unresolved = [str(p.relative_to(html)) for p in html.rglob('*.html')
                  if '<span class="xref myst">' in p.read_text(encoding='utf-8')]
    assert unresolved == []


def _documented_as(obj, name: str) -> str:
    """The name the reference documents ``obj`` (found as ``name``) under."""
    if inspect.ismodule(obj):
        return obj.__name__
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f'{obj.__module__}.{obj.__qualname__}'
    return name


def _resolve(name: str):
    """The object of the dotted ``name``: its longest importable module, then attributes."""
    parts = name.split('.')
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(name)


def _in_reference(name: str, objects: dict) -> bool:
    documented = set().union(*objects.values())
    target = _documented_as(_resolve(name), name)
    if target in documented:
        return True
    # a constant a package re-exports is documented in the module defining it
    package, _, short = name.rpartition('.')
    return any(n.startswith(package + '.') and n.endswith('.' + short)
               for n in objects.get('py:data', ()))


@pytest.mark.slow
def test_api_reference_documents_every_public_module(site):
    _, objects = site
    missing = sorted(set(_public_modules()) - objects['py:module'])
    assert missing == [], f'modules missing from the API reference: {missing}'


@pytest.mark.slow
def test_api_reference_documents_every_exported_name(site):
    _, objects = site
    missing = []
    for package in _public_modules():
        module = importlib.import_module(package)
        for name in getattr(module, '__all__', []):
            if name.startswith('_'):
                continue  # e.g. __version__: autodoc documents no dunder names
            if not _in_reference(f'{package}.{name}', objects):
                missing.append(f'{package}.{name}')
    assert missing == [], missing


@pytest.mark.slow
def test_names_cited_in_the_pages_are_in_the_api_reference(site):
    """Every `mmaffseg.x.y` of the site's Markdown is an object of the reference (or is
    listed in NOT_IN_REFERENCE)."""
    _, objects = site
    cited = set()
    for path in _site_markdown():
        with open(path, encoding='utf-8') as f:
            cited.update(re.findall(r'`(mmaffseg(?:\.\w+)+)`', f.read()))
    assert {'mmaffseg.apis.init_model', 'mmaffseg.ops.precision.float32_math'} <= cited
    missing = []
    for name in sorted(cited - NOT_IN_REFERENCE):
        try:
            if not _in_reference(name, objects):
                missing.append(name)
        except (ImportError, AttributeError) as e:
            missing.append(f'{name} ({type(e).__name__}: {e})')
    assert missing == [], missing
