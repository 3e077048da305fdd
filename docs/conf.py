# Copyright (c) mmaffseg contributors. All rights reserved.
"""Sphinx configuration of the mmaffseg documentation site.

Build it (warnings are errors, as in the tests) from the repository root::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The pages are the Markdown files of ``docs/`` (read by myst-parser), the README, CHANGELOG and
every Markdown file of ``configs/`` (the model cards; ``_ext/repo_pages.py``), and an API
reference generated from the docstrings of every public module (``_ext/api_pages.py``:
autodoc, with napoleon reading the Google-style ``Args:`` / ``Returns:`` sections that
mmaffseg's docstrings use, as mmseg's). The build writes ``api/`` and ``model_zoo/`` here
(not in git).
"""
import os
import os.path as osp
import sys

DOCS = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(DOCS)
sys.path.insert(0, REPO)  # document this checkout's mmaffseg, not an installed copy
sys.path.insert(0, osp.join(DOCS, '_ext'))  # this site's extensions
os.environ.setdefault('MPLBACKEND', 'Agg')

from mmaffseg import __version__  # noqa: E402

project = 'mmaffseg'
copyright = 'mmaffseg contributors'
author = 'mmaffseg contributors'
version = __version__
release = __version__

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
    'myst_parser',
    'api_pages',  # api/<module>.rst for every public module, written at every build
    'repo_pages',  # the README, CHANGELOG and model cards as pages; links between files
]
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
root_doc = 'index'
exclude_patterns = ['_build', '_ext']

# autodoc: every member, documented or not, in source order, with typed signatures; each name
# is documented in the module that defines it (the pages of _ext/api_pages.py ignore a
# package's __all__); no imports mocked (the documentation environment is the project's own).
autodoc_member_order = 'bysource'
autodoc_typehints = 'signature'
# a method without a docstring shows none, not its mmseg / torch base class's
autodoc_inherit_docstrings = False
autodoc_default_options = {
    'members': True,
    'undoc-members': True,
    'show-inheritance': True,
}
# napoleon: Google-style sections only; a type in parentheses is shown as written.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_preprocess_types = False
napoleon_attr_annotations = True
# 'Attributes:' sections as field lists: a NamedTuple's fields are also documented by autodoc,
# and two descriptions of one attribute are a duplicate-object warning
napoleon_use_ivar = True

# Headings get anchors, as on GitHub, so that 'page.md#heading' links resolve.
myst_heading_anchors = 3
myst_enable_extensions = ['colon_fence']
# No warning is suppressed: a link that resolves to no page or file fails the build (-W).
# Links between repository files are rewritten for the site by _ext/repo_pages.py.

html_theme = 'sphinx_rtd_theme'
html_title = f'mmaffseg {version}'


def _napoleon_skip_member(app, what, name, obj, skip, options):
    """napoleon's member filter, except for mmcv's ``@cache_randomness`` methods (e.g.
    ``ColorJitter.sample``): napoleon reads the member from its class, which that descriptor
    refuses (it needs an instance); they are documented as any public method."""
    from mmcv.transforms.utils import cache_randomness
    from sphinx.ext.napoleon import _skip_member
    if isinstance(obj, cache_randomness):
        return None
    return _skip_member(app, what, name, obj, skip, options)


def setup(app):
    from sphinx.ext.napoleon import _skip_member
    for listener in list(app.events.listeners['autodoc-skip-member']):
        if listener.handler is _skip_member:
            app.disconnect(listener.id)
    app.connect('autodoc-skip-member', _napoleon_skip_member)
