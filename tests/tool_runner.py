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


def load_tool(relpath: str, folder: str = 'tools') -> ModuleType:
    """Import this checkout's ``<folder>/<relpath>`` (``tools/`` by default, or ``demo/``) as a
    module (to call its ``main`` in-process)."""
    path = osp.join(REPO, folder, relpath)
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
