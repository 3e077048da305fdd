# Copyright (c) mmaffseg contributors. All rights reserved.
"""The API reference's pages, written at every build: one page per public module of mmaffseg.

A module or package is public when no part of its dotted name starts with an underscore; they
are found by walking the package's folder (no list to keep up to date when modules are added or
moved). Each page is ``api/<dotted name>.rst``: an ``automodule`` of what the module defines (a
package's ``__all__`` is ignored, so that a name it re-exports is documented once, in the module
that defines it) and, for a package, a table of contents of its public modules.
``docs/api.rst`` lists the top package's page.
"""
import os
import os.path as osp
from typing import Dict, List

#: Where the pages are written, in the source folder (not in git).
API_DIR = 'api'


def public_modules(package_dir: str) -> Dict[str, List[str]]:
    """Dotted name of every public module and package under ``package_dir`` (a package's
    folder) -> its public children (dotted names, sorted; empty for a module)."""
    top = osp.basename(osp.normpath(package_dir))
    found = {}
    for dirpath, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(('_', '.'))
                         and osp.isfile(osp.join(dirpath, d, '__init__.py')))
        rel = osp.relpath(dirpath, package_dir)
        package = top if rel == '.' else '.'.join([top] + rel.split(os.sep))
        modules = [f'{package}.{name[:-3]}' for name in sorted(files)
                   if name.endswith('.py') and not name.startswith('_')]
        found[package] = sorted([f'{package}.{d}' for d in dirs] + modules)
        found.update({name: [] for name in modules})
    return found


def module_page(name: str, children: List[str]) -> str:
    """The reST page of module ``name``."""
    title = name.replace('_', r'\_')
    text = f'{title}\n{"=" * len(title)}\n\n.. automodule:: {name}\n   :ignore-module-all:\n'
    if children:
        text += '\n.. rubric:: Modules\n\n.. toctree::\n   :maxdepth: 1\n\n' + ''.join(
            f'   {child}\n' for child in children)
    return text


def write_api_pages(srcdir: str, package_dir: str) -> None:
    """Write the pages into ``srcdir/API_DIR`` (a changed one only) and remove those of
    modules that are gone."""
    out = osp.join(srcdir, API_DIR)
    os.makedirs(out, exist_ok=True)
    pages = {f'{name}.rst': module_page(name, children)
             for name, children in public_modules(package_dir).items()}
    for name in os.listdir(out):
        if name not in pages:
            os.remove(osp.join(out, name))
    for name, text in pages.items():
        path = osp.join(out, name)
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                if f.read() == text:
                    continue
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)


def setup(app) -> dict:
    srcdir = osp.abspath(os.fspath(app.srcdir))
    package_dir = osp.join(osp.dirname(srcdir), 'mmaffseg')
    app.connect('builder-inited', lambda app: write_api_pages(srcdir, package_dir))
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
