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


def mmseg_tool(relpath: str) -> str:
    """Path of mmseg's own ``tools/<relpath>``, as shipped in the installed mmseg package
    (``mmseg/.mim/tools``); skips the test when this mmseg ships no such file."""
    import mmseg
    import pytest
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', relpath)
    if not osp.isfile(path):
        pytest.skip(f'mmseg ships no {path}')
    return path


def run_in_one_process(argvs: list, expect: int = 0, env: Optional[dict] = None,
                       timeout: int = 900) -> str:
    """Run several ``python ARGV...`` scripts one after another in ONE interpreter (through
    ``runpy``, as ``python script.py`` runs them), to pay torch's and mmseg's imports once;
    return the combined output.

    Each script runs to its end even when an earlier one failed: after script ``i`` the output
    has the line ``==> script i: ok``, or ``==> script i: failed`` and its traceback (a
    ``SystemExit`` with status 0 or None is a success). The interpreter's own exit status is
    asserted to be ``expect`` (0 unless the driver itself breaks).
    """
    code = ('import runpy, sys, traceback\n'
            f'for i, argv in enumerate({argvs!r}):\n'
            '    sys.argv = list(argv)\n'
            '    try:\n'
            '        try:\n'
            '            runpy.run_path(argv[0], run_name="__main__")\n'
            '        except SystemExit as e:\n'
            '            if e.code not in (None, 0):\n'
            '                raise\n'
            '        print(f"==> script {i}: ok", flush=True)\n'
            '    except BaseException:\n'
            '        traceback.print_exc(file=sys.stdout)\n'
            '        print(f"==> script {i}: failed", flush=True)\n')
    return run_tool(['-c', code], expect=expect, env=env, timeout=timeout)


def script_outputs(out: str, count: int) -> list:
    """The output of each script of :func:`run_in_one_process` (up to its ``==>`` line), and
    whether it succeeded: ``[(ok, text), ...]``. A script that never reported is a failure."""
    results, rest = [], out
    for i in range(count):
        for status in ('ok', 'failed'):
            marker = f'==> script {i}: {status}'
            if marker in rest:
                text, rest = rest.split(marker, 1)
                results.append((status == 'ok', text))
                break
        else:
            results.append((False, rest))
            rest = ''
    return results
