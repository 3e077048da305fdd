# Copyright (c) mmaffseg contributors. All rights reserved.
"""Read the golden parity fixtures in ``tests/data/golden`` (see its README).

Each fixture holds the numbers of an official implementation run on CPU. This module only
reads them and rebuilds "recipe" state dicts; the tests compare our modules against them.
"""
import glob
import json
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
import torch

GOLDEN_ROOT = osp.join(osp.dirname(__file__), 'data', 'golden')


@dataclass
class GoldenCase:
    """One fixture file, unpacked."""
    path: str
    meta: dict
    params: Dict[str, torch.Tensor] = field(default_factory=dict)
    inputs: Dict[str, np.ndarray] = field(default_factory=dict)
    outputs: Dict[str, np.ndarray] = field(default_factory=dict)
    keys: List[list] = field(default_factory=list)

    @property
    def name(self) -> str:
        return osp.splitext(osp.basename(self.path))[0]

    def tolerance(self, output_name: str) -> dict:
        tol = dict(self.meta['tolerance'])
        tol.update(self.meta.get('tolerance_per_output', {}).get(output_name, {}))
        return tol

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """The reference state dict: stored params, or the recipe fill plus stored tables."""
        if self.meta['fill'] == 'stored':
            return dict(self.params)
        sd = recipe_state_dict(self.keys, float(self.meta.get('conv_scale', 1.0)))
        sd.update(self.params)
        return sd


def load_case(path: str) -> GoldenCase:
    z = np.load(path)
    case = GoldenCase(path=path, meta=json.loads(str(z['meta'])))
    for k in z.files:
        if k.startswith('param/'):
            case.params[k[len('param/'):]] = torch.from_numpy(np.array(z[k]))
        elif k.startswith('input/'):
            case.inputs[k[len('input/'):]] = np.array(z[k])
        elif k.startswith('output/'):
            case.outputs[k[len('output/'):]] = np.array(z[k])
    if 'keys' in z.files:
        case.keys = json.loads(str(z['keys']))
    return case


def case_paths(method: str, pattern: str = '*') -> List[str]:
    """All fixture files of one method folder matching a glob pattern, sorted."""
    return sorted(glob.glob(osp.join(GOLDEN_ROOT, method, f'{pattern}.npz')))


def recipe_tensor(key: str, shape: list, conv_scale: float = 1.0) -> torch.Tensor:
    """The deterministic value the fixture README prescribes for one state-dict entry."""
    n = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(n, dtype=np.float64)
    if key.endswith('running_mean'):
        v = 0.01 * np.sin(i)
    elif key.endswith('running_var'):
        v = 1 + 0.1 * np.cos(i)**2
    elif len(shape) >= 2:
        fan_in = n / shape[0]
        v = conv_scale * (2 / math.sqrt(fan_in)) * np.sin(0.7 * i + 0.3 * len(key))
    elif key.endswith('weight'):
        v = 1 + 0.1 * np.sin(i)
    else:
        v = 0.01 * np.cos(i)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def recipe_state_dict(keys: List[list], conv_scale: float = 1.0) -> Dict[str, torch.Tensor]:
    """Recipe-filled state dict; ``num_batches_tracked`` entries are left out (stay 0)."""
    return {
        key: recipe_tensor(key, shape, conv_scale)
        for key, shape in keys if not key.endswith('num_batches_tracked')
    }


def assert_close(case: GoldenCase, name: str, actual) -> None:
    """Compare one output with the fixture's tolerance (honours ``exclude_mask``)."""
    if isinstance(actual, torch.Tensor):
        actual = actual.detach().cpu().numpy()
    expected = case.outputs[name]
    assert actual.shape == expected.shape, (
        f'{case.name}/{name}: shape {actual.shape} != expected {expected.shape}')
    tol = case.tolerance(name)
    keep = np.ones(expected.shape, dtype=bool)
    if tol.get('exclude_mask'):
        keep = ~case.outputs[tol['exclude_mask']].astype(bool)
    a = actual.astype(np.float64)[keep]
    e = expected.astype(np.float64)[keep]
    ok = np.abs(a - e) <= tol['atol'] + tol['rtol'] * np.abs(e)
    assert ok.all(), (
        f'{case.name}/{name}: {int((~ok).sum())}/{ok.size} elements outside '
        f'rtol={tol["rtol"]} atol={tol["atol"]}; max abs diff {np.abs(a - e).max():.3e}')
