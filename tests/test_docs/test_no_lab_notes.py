# Copyright (c) mmaffseg contributors. All rights reserved.
"""The documentation states current results, not a lab notebook, and nothing cites the tracker.

Users cannot see the issue tracker, so no file of the repository (code, comments, docstrings,
configs, tests, docs) refers to an issue by number. The results pages (the root README,
``docs/*.md``, every ``configs/<method>/*.md`` besides the model card ``README.md``, and
``configs/benchmark/README.md``) state current results with their command and machine: no
clock times, load averages, commit ids or "earlier run" narratives. History belongs in
``CHANGELOG.md``, which is held to the same rules except that it may narrate history.
"""
import os
import os.path as osp
import re

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SKIP_DIRS = {'.git', '.mim', '__pycache__', '.pytest_cache', '.ruff_cache', 'build', 'dist',
             'work_dirs', '.eggs', '.venv', 'node_modules', '_build'}
TEXT_SUFFIXES = ('.py', '.md', '.rst', '.txt', '.yaml', '.yml', '.toml', '.cfg', '.ini', '.sh',
                 '.json')

ISSUE = re.compile(r'\bissues?\s*#?\d+|\(#\d{1,4}\)|(?<![\w&/#])#\d{1,4}\b(?![\w-])', re.I)
LAB_NOTES = {
    'a clock time (UTC)': re.compile(r'\bUTC\b|\b\d{1,2}:\d{2}(?::\d{2})?\s*(?:-\s*\d{1,2}:\d{2}'
                                     r'(?::\d{2})?\s*)?(?:UTC|GMT|CET)\b'),
    'a date': re.compile(r'\b20\d\d-[01]\d-[0-3]\d\b'),
    'a load average': re.compile(r'\bload(?: average)?\s*(?:of\s*|~|about\s*|at\s*)?\d|'
                                 r'\bload average\b', re.I),
    # a hex id in a link or ``repo@id`` pins an external repository's version: users can follow it
    'a commit id': re.compile(r'(?<![/@])\b(?=[0-9a-f]{0,39}[a-f])(?=[0-9a-f]{0,39}\d)'
                              r'[0-9a-f]{7,40}\b|\b(?:main|commit|branch) (?:at )?\d{7,40}\b'),
    'a history narrative': re.compile(r'before this round|\bthis round\b|\ban earlier run|'
                                      r'\bearlier runs\b', re.I),
}


def _repo_files() -> list:
    found = []
    for root, dirs, files in os.walk(REPO):
        rel = osp.relpath(root, REPO)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith('.egg-info')
                         and not (rel == '.' and d == 'data')
                         # written by the documentation build from the sources checked here
                         and not (rel == 'docs' and d in ('api', 'model_zoo')))
        found += [osp.relpath(osp.join(root, f), REPO).replace(os.sep, '/')
                  for f in sorted(files) if f.endswith(TEXT_SUFFIXES)]
    return found


def _is_results_page(rel: str) -> bool:
    parts = rel.split('/')
    if rel == 'README.md' or (parts[0] == 'docs' and len(parts) == 2 and rel.endswith('.md')):
        return True
    if parts[0] == 'configs' and len(parts) == 3 and rel.endswith('.md'):
        return parts[2] != 'README.md' or parts[1] == 'benchmark'
    return False


def _read(rel: str) -> str:
    with open(osp.join(REPO, rel), encoding='utf-8', errors='replace') as f:
        return f.read()


def _hits(pattern: re.Pattern, text: str) -> list:
    return [f'line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}'
            for m in pattern.finditer(text)]


FILES = _repo_files()
RESULTS_PAGES = [f for f in FILES if _is_results_page(f)]


def test_the_scan_sees_the_pages():
    assert 'README.md' in RESULTS_PAGES and 'docs/benchmarks.md' in RESULTS_PAGES
    assert 'configs/psa/benchmarks.md' in RESULTS_PAGES
    assert 'configs/psa/README.md' not in RESULTS_PAGES
    assert 'configs/benchmark/README.md' in RESULTS_PAGES
    assert osp.relpath(__file__, REPO).replace(os.sep, '/') in FILES


def test_the_patterns_catch_lab_notes():
    cited, pr = 'issue %d' % 17, '(#%d)' % 12  # built, so that this file does not cite them
    note = ('Measured at 07:27-07:49 UTC on main at 8412020 and 0c360ba (load average 1.1; '
            'an earlier run gave 3 s, before this round 12 s; see %s and %s).' % (cited, pr))
    assert ISSUE.findall(note) == [cited, pr]
    for name, pattern in LAB_NOTES.items():
        assert pattern.search(note) or name == 'a date', name
    assert LAB_NOTES['a date'].search('on 2026-12-02')
    clean = ('2-core x86-64 CPU, 1 thread: 3.59 s at prior 128; 8388608 pixels; a 0.5 load '
             'factor; colour #ffffff; heading ## Results; loaded 4 images')
    assert not ISSUE.search(clean)
    assert not any(p.search(clean) for p in LAB_NOTES.values()), clean


@pytest.mark.parametrize('rel', FILES)
def test_no_issue_numbers(rel):
    hits = _hits(ISSUE, _read(rel))
    assert not hits, (f'{rel} cites the issue tracker ({"; ".join(hits)}): users cannot see '
                      'it; say what the change is instead of its number')


@pytest.mark.parametrize('rel', RESULTS_PAGES + ['CHANGELOG.md'])
def test_results_pages_state_current_results(rel):
    text = _read(rel)
    problems = [f'{name} at {hit}' for name, pattern in LAB_NOTES.items()
                if not (rel == 'CHANGELOG.md' and name in ('a history narrative', 'a date'))
                for hit in _hits(pattern, text)]
    assert not problems, (f'{rel} reads as a lab notebook: {"; ".join(problems)}. State the '
                          'current result with its command and machine; move history to '
                          'CHANGELOG.md')
