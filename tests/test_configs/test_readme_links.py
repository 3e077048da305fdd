# Copyright (c) mmaffseg contributors. All rights reserved.
"""The documentation's relative links resolve, and every method README names its configs.

A link ``[text](path#anchor)`` in any ``*.md`` file of the repository must point to an existing
file or folder (relative to the Markdown file), and an anchor into a Markdown file to one of its
headings (GitHub's heading ids). Links inside code blocks and to other sites are not checked.
"""
import os
import os.path as osp
import re

import pytest
import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
# folders that are not documentation: build outputs, data, caches, the .mim links to configs/
SKIP_DIRS = {'.git', '.mim', '__pycache__', '.pytest_cache', '.ruff_cache', 'build', 'dist',
             'work_dirs', '.eggs', '.venv'}

LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
FENCE = re.compile(r'^\s*(```|~~~)')


def _markdown_files() -> list:
    found = []
    for root, dirs, files in os.walk(REPO):
        rel = osp.relpath(root, REPO)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith('.egg-info')
                         and not (rel == '.' and d == 'data'))
        found += [osp.join(root, f) for f in sorted(files) if f.endswith('.md')]
    return found


def _outside_code(text: str) -> str:
    """The text without fenced code blocks and inline code spans."""
    kept, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            kept.append(re.sub(r'`[^`]*`', '', line))
    return '\n'.join(kept)


def github_anchor(heading: str) -> str:
    """GitHub's id of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r'[`*_]', lambda m: '_' if m.group() == '_' else '', heading.strip().lower())
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def heading_anchors(path: str) -> set:
    with open(path, encoding='utf-8') as f:
        text = f.read()
    anchors, counts, in_fence = set(), {}, False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and re.match(r'#{1,6} ', line):
            anchor = github_anchor(line.lstrip('#'))
            n = counts.get(anchor, 0)
            counts[anchor] = n + 1
            anchors.add(anchor if n == 0 else f'{anchor}-{n}')
    return anchors


def broken_links(md_path: str, root: str = REPO) -> list:
    """``(link, reason)`` for every relative link of ``md_path`` that does not resolve inside
    ``root`` (a link out of the repository works only on the machine that wrote it)."""
    with open(md_path, encoding='utf-8') as f:
        text = _outside_code(f.read())
    broken = []
    for target in LINK.findall(text):
        if re.match(r'[a-z][a-z0-9+.-]*:', target):  # http:, https:, mailto:, ...
            continue
        path, _, anchor = target.partition('#')
        dest = osp.normpath(osp.join(osp.dirname(md_path), path)) if path else md_path
        if osp.commonpath([osp.abspath(root), osp.abspath(dest)]) != osp.abspath(root):
            broken.append((target, 'outside the repository'))
        elif not osp.exists(dest):
            broken.append((target, 'no such file'))
        elif anchor and dest.endswith('.md') and anchor not in heading_anchors(dest):
            broken.append((target, f'no heading #{anchor} in {osp.relpath(dest, REPO)}'))
    return broken


MARKDOWN = _markdown_files()


def test_markdown_files_are_found():
    names = {osp.relpath(p, REPO) for p in MARKDOWN}
    assert 'README.md' in names and osp.join('configs', 'hanet', 'README.md') in names


@pytest.mark.parametrize('md_path', MARKDOWN, ids=lambda p: osp.relpath(p, REPO))
def test_relative_links_resolve(md_path):
    assert broken_links(md_path) == [], osp.relpath(md_path, REPO)


#: A script of this repository's tool folders named anywhere in a page, code included (mmseg's
#: own tools, e.g. tools/dataset_converters/cityscapes.py, are named in the docs too).
OWN_TOOL = re.compile(r'(?<![\w/.])(tools/(?:analysis_tools|model_converters)/[\w./-]+\.(?:py|sh))')


@pytest.mark.parametrize('md_path', MARKDOWN, ids=lambda p: osp.relpath(p, REPO))
def test_named_tool_scripts_exist(md_path):
    """The commands the docs show name scripts that exist (e.g. no removed benchmark script)."""
    with open(md_path, encoding='utf-8') as f:
        named = set(OWN_TOOL.findall(f.read()))
    assert sorted(p for p in named if not osp.exists(osp.join(REPO, p))) == [], \
        osp.relpath(md_path, REPO)


def test_the_check_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / 'other.md').write_text('# Title\n\n## Differences from the paper / official code\n')
    page = tmp_path / 'page.md'
    page.write_text('[ok](other.md) [ok](other.md#differences-from-the-paper--official-code)\n'
                    '[gone](missing.md) [bad anchor](other.md#nowhere) [web](https://x.org/a)\n'
                    '```\n[in code](nothing.md)\n```\n')
    assert broken_links(str(page), root=str(tmp_path)) == [
        ('missing.md', 'no such file'),
        ('other.md#nowhere', 'no heading #nowhere in ' + osp.relpath(str(tmp_path / 'other.md'),
                                                                      REPO)),
    ]


METAFILES = sorted(
    osp.join(CONFIGS, d, 'metafile.yaml') for d in os.listdir(CONFIGS)
    if osp.isfile(osp.join(CONFIGS, d, 'metafile.yaml')))


@pytest.mark.parametrize('metafile', METAFILES, ids=lambda p: osp.basename(osp.dirname(p)))
def test_every_config_is_named_in_its_readme(metafile):
    """Each config of a method folder appears in the README its metafile names (the model
    card's results table links every config)."""
    with open(metafile, encoding='utf-8') as f:
        (collection, ) = yaml.safe_load(f)['Collections']
    with open(osp.join(REPO, collection['README']), encoding='utf-8') as f:
        readme = f.read()
    folder = osp.dirname(metafile)
    configs = sorted(f for f in os.listdir(folder) if f.endswith('.py'))
    assert configs
    assert [c for c in configs if c not in readme] == [], collection['README']


def test_a_link_out_of_the_repository_is_broken(tmp_path):
    repo = tmp_path / 'repo'
    repo.mkdir()
    (tmp_path / 'shared.md').write_text('# Notes\n')
    (repo / 'README.md').write_text('[notes](../shared.md) and [self](README.md)\n')
    assert broken_links(str(repo / 'README.md'), root=str(repo)) == [
        ('../shared.md', 'outside the repository')]
