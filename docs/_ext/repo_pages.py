# Copyright (c) mmaffseg contributors. All rights reserved.
"""The repository's Markdown files outside ``docs/`` as pages of the documentation site, and
the relative links of every Markdown page made to work in the site.

Pages: a Markdown page of ``docs/`` that includes a Markdown file of the repository (MyST's
``{include}`` directive, e.g. ``changelog.md`` includes ``CHANGELOG.md``) stands for that file.
The model cards and their second pages (every ``configs/<folder>/*.md``) get such pages at
every build, ``model_zoo/<folder>/<name>.md``: a folder's ``README.md`` lists its other pages
in a hidden table of contents; ``docs/model_zoo.md`` lists the READMEs.

Links: the files link each other by repository paths (as on GitHub). In every Markdown page
and included file, a relative link or image is rewritten before MyST reads it:

- to a file (or a folder with a ``README.md``) that a page stands for: a link to that page,
  anchor kept;
- an image: its path from the page;
- to any other file or folder of the repository (a config, a tool, a test): its repository
  path as code, after the link text unless the text names it already;
- external links, anchors and paths that do not exist: unchanged (MyST warns about the last).
"""
import os
import os.path as osp
import re
from typing import Dict, List

#: Where the model cards' pages are written, in the source folder (not in git).
MODEL_ZOO = 'model_zoo'
#: Folders of the source folder holding no pages.
SKIPPED_DIRS = ('_build', '_ext')

INCLUDE = re.compile(r'^```\{include\}\s+(\S+\.md)\s*$', re.M)
FENCE = re.compile(r'^\s*(```|~~~)')
# an inline code span (left alone) or a link / image, whose text may hold code spans
LINK_OR_CODE = re.compile(
    r'(?P<code>`+[^`]*`+)'
    r'|(?P<bang>!?)\[(?P<text>(?:`[^`]*`|[^\]`])*)\]\((?P<target>[^)\s]+)(?P<title>\s+"[^"]*")?\)')
SCHEME = re.compile(r'[a-zA-Z][a-zA-Z0-9+.-]*:')


def model_zoo_files(repo: str) -> List[str]:
    """Every ``configs/<folder>/*.md`` (repository paths, sorted)."""
    configs = osp.join(repo, 'configs')
    found = []
    for folder in sorted(os.listdir(configs)):
        path = osp.join(configs, folder)
        if osp.isdir(path) and not folder.startswith(('_', '.')):
            found += [f'configs/{folder}/{name}' for name in sorted(os.listdir(path))
                      if name.endswith('.md')]
    return found


def model_zoo_pages(repo: str) -> Dict[str, str]:
    """The page of each model-zoo file (path in the source folder -> its text)."""
    pages = {}
    files = model_zoo_files(repo)
    for path in files:
        folder, name = path.split('/')[1:]
        text = f'```{{include}} ../../../{path}\n```\n'
        if name == 'README.md':
            others = [p.split('/')[2][:-3] for p in files
                      if p.split('/')[1] == folder and p != path]
            if others:
                text += '\n```{toctree}\n:hidden:\n\n' + '\n'.join(others) + '\n```\n'
        pages[f'{MODEL_ZOO}/{folder}/{name}'] = text
    return pages


def write_model_zoo(srcdir: str, repo: str) -> None:
    """Write the model-zoo pages into ``srcdir/MODEL_ZOO`` (a changed one only) and remove
    those of files that are gone."""
    pages = model_zoo_pages(repo)
    root = osp.join(srcdir, MODEL_ZOO)
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.relpath(osp.join(dirpath, name), srcdir).replace(os.sep, '/')
            if path not in pages:
                os.remove(osp.join(dirpath, name))
    for path, text in pages.items():
        full = osp.join(srcdir, *path.split('/'))
        if osp.isfile(full):
            with open(full, encoding='utf-8') as f:
                if f.read() == text:
                    continue
        os.makedirs(osp.dirname(full), exist_ok=True)
        with open(full, 'w', encoding='utf-8') as f:
            f.write(text)


def site_pages(srcdir: str, repo: str) -> Dict[str, str]:
    """Repository path of a Markdown file -> the docname of the page that shows it: each
    Markdown page of the source folder, and each Markdown file it includes."""
    pages = {}
    for dirpath, dirs, files in os.walk(srcdir):
        if dirpath == srcdir:
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        for name in sorted(files):
            if not name.endswith('.md'):
                continue
            path = osp.join(dirpath, name)
            docname = osp.relpath(path, srcdir)[:-3].replace(os.sep, '/')
            pages[_repo_path(path, repo)] = docname
            with open(path, encoding='utf-8') as f:
                for included in INCLUDE.findall(f.read()):
                    pages[_repo_path(osp.join(dirpath, included), repo)] = docname
    return pages


def _repo_path(path: str, repo: str) -> str:
    return osp.relpath(osp.normpath(path), repo).replace(os.sep, '/')


def rewrite_links(text: str, source: str, docname: str, srcdir: str, repo: str,
                  pages: Dict[str, str]) -> str:
    """``text`` (Markdown of the repository file ``source``) with its relative links and images
    rewritten for the page ``docname`` (see the module's docstring)."""
    page_dir = osp.dirname(osp.join(srcdir, *docname.split('/')))
    source_dir = osp.dirname(osp.join(repo, source))

    def link(match: re.Match) -> str:
        target = match.group('target')
        if match.group('code') or target.startswith('#') or SCHEME.match(target):
            return match.group(0)
        path, sep, anchor = target.partition('#')
        full = osp.normpath(osp.join(source_dir, path))
        if not osp.exists(full) or osp.commonpath([repo, full]) != repo:
            return match.group(0)
        rel = _repo_path(full, repo)
        if osp.isdir(full) and f'{rel}/README.md' in pages:
            rel, full = f'{rel}/README.md', osp.join(full, 'README.md')
        label, title = match.group('text'), match.group('title') or ''
        if match.group('bang'):
            return f'![{label}]({osp.relpath(full, page_dir)}{title})'
        if rel in pages:
            page = osp.join(srcdir, *pages[rel].split('/')) + '.md'
            return f'[{label}]({osp.relpath(page, page_dir)}{sep}{anchor}{title})'
        shown = rel + '/' if osp.isdir(full) else rel
        named = label.replace('`', '').strip().rstrip('/')
        if named and (rel == named or rel.endswith('/' + named)):
            return f'`{shown}`'
        return f'{label} (`{shown}`)'

    chunks, kept, in_fence = [], [], False
    for line in text.splitlines(keepends=True):
        if FENCE.match(line):
            if not in_fence:
                chunks.append(LINK_OR_CODE.sub(link, ''.join(kept)))
                kept = []
            in_fence = not in_fence
            chunks.append(line)
        elif in_fence:
            chunks.append(line)
        else:
            kept.append(line)
    chunks.append(LINK_OR_CODE.sub(link, ''.join(kept)))
    return ''.join(chunks)


def setup(app) -> dict:
    srcdir = osp.abspath(os.fspath(app.srcdir))
    repo = osp.dirname(srcdir)
    state = {}

    def pages_of_the_site(app) -> None:
        write_model_zoo(srcdir, repo)
        state['pages'] = site_pages(srcdir, repo)

    def source_read(app, docname: str, source: list) -> None:
        path = os.fspath(app.env.doc2path(docname))
        if path.endswith('.md'):
            source[0] = rewrite_links(source[0], _repo_path(path, repo), docname, srcdir, repo,
                                      state['pages'])

    def include_read(app, relative_path, parent_docname: str, content: list) -> None:
        path = osp.normpath(osp.join(srcdir, os.fspath(relative_path)))
        if path.endswith('.md'):
            # app.env.docname: the page being read (MyST passes a stem as parent_docname)
            content[0] = rewrite_links(content[0], _repo_path(path, repo), app.env.docname,
                                       srcdir, repo, state['pages'])

    app.connect('builder-inited', pages_of_the_site)
    app.connect('source-read', source_read)
    app.connect('include-read', include_read)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
