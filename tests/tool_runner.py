# Copyright (c) mmaffseg contributors. All rights reserved.
"""Run this checkout's tools as users run them (``python tools/X.py ARGS``) from the tests."""
import importlib.util
import os.path as osp
import subprocess
import sys
from types import ModuleType
from typing import Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def cfg_option_args(opts: dict) -> list:
    """``--cfg-options`` words: lists as ``[a,b]``, tuples as ``(a,b)`` (mmengine DictAction)."""
    out = []
    for k, v in opts.items():
        if isinstance(v, (list, tuple)):
            v = ('[{}]' if isinstance(v, list) else '({})').format(','.join(map(str, v)))
        out.append(f'{k}={v}')
    return out


def run_tool(args: list, expect: int = 0, env: Optional[dict] = None,
             timeout: int = 900) -> str:
    """Run ``python ARGS`` in the repository root; assert its exit status, return its output."""
    proc = subprocess.run([sys.executable] + args, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == expect, out[-4000:]
    return out


# Runs several invocations of the real tools in one interpreter (each as `python TOOL ARGS`
# would, through runpy with sys.argv set): a tool's start-up (importing mmseg) costs more than
# failing on a bad input. Prints one JSON line: [[exit status, stderr], ...].
_DRIVER = """
import contextlib, io, json, runpy, sys, traceback
results = []
for argv in json.loads(sys.argv[1]):
    sys.argv, err, code = argv, io.StringIO(), 0
    with contextlib.redirect_stderr(err):
        try:
            runpy.run_path(argv[0], run_name='__main__')
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append([code, err.getvalue()])
print('RESULTS ' + json.dumps(results))
"""


def run_tools_in_one_process(invocations: list, env: Optional[dict] = None) -> list:
    """Run each ``[tool.py, args...]`` of ``invocations`` in one interpreter, in order, for
    inputs that fail before a runner is built; returns ``[[exit status, stderr], ...]``."""
    import json
    out = run_tool(['-c', _DRIVER, json.dumps(invocations)], env=env)
    line = [x for x in out.splitlines() if x.startswith('RESULTS ')]
    assert line, out[-4000:]
    return json.loads(line[-1][len('RESULTS '):])


def one_error_line(code: int, err: str, what: str) -> str:
    """The one ``TOOL: error: ...`` line of a run that exited with status 2 and no traceback."""
    assert code == 2 and 'Traceback' not in err, f'{what}: exit {code}\n{err[-3000:]}'
    lines = [line for line in err.splitlines() if ': error: ' in line]
    assert len(lines) == 1, f'{what}: {err[-3000:]}'
    return lines[0]


def load_tool(relpath: str, folder: str = 'tools') -> ModuleType:
    """Import this checkout's ``<folder>/<relpath>`` (``tools/`` by default, or ``demo/``) as a
    module (to call its ``main`` in-process)."""
    path = osp.join(REPO, folder, relpath)
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
