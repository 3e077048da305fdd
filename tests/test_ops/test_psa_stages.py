# Copyright (c) mmaffseg contributors. All rights reserved.
"""PSA's stages are one table (mmaffseg/ops/psa_stages.py): the sets the code uses are derived
from it, the runner, its record, the metric and the tools read them, and what the table says of
a stage (walks, CRF, scored) is what the stage functions do.

The stage names used to be written out in seven files (the folders, the walk stages, the
evaluated stages, the CRF stages, the tools' choices, Table 1's rows, the selection criterion).
"""
import ast
import glob
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from tool_runner import load_tool

from mmaffseg.evaluation import TABLE1_ROWS
from mmaffseg.ops.psa_stages import (
    CAM_STAGES,
    CRF_STAGES,
    EVALUATED_STAGES,
    PSA_STAGES,
    STAGE_DIRS,
    STAGE_NAMES,
    WALK_STAGES,
)
from mmaffseg.wsss import PseudoLabelLoop, stage_labels
from mmaffseg.wsss.pseudo_label_provenance import CAMS_STAGE, STAGE_SETTINGS
from mmaffseg.wsss.pseudo_label_stages import crf_stage_labels

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_the_table_and_what_is_derived_from_it():
    assert STAGE_NAMES == ('cam', 'affinity_labels', 'rw', 'rw_crf')  # pipeline order
    assert len(set(STAGE_DIRS.values())) == len(PSA_STAGES) and CAMS_STAGE not in STAGE_DIRS
    assert dict(STAGE_DIRS) == {s: s for s in STAGE_NAMES}  # the folders carry the names
    assert WALK_STAGES == ('rw', 'rw_crf')
    assert CAM_STAGES == ('cam', 'affinity_labels')
    assert CRF_STAGES == ('affinity_labels', 'rw_crf')
    assert EVALUATED_STAGES == ('cam', 'rw', 'rw_crf')
    assert TABLE1_ROWS == (('cam', 'CAM'), ('rw', 'CAM + RW'), ('rw_crf', 'CAM + RW + dCRF'))
    assert set(STAGE_SETTINGS) == {CAMS_STAGE, *STAGE_NAMES}
    assert STAGE_SETTINGS['rw'] == STAGE_SETTINGS['rw_crf'] == ('rw_alpha', 'rw_beta', 'rw_logt')
    with pytest.raises(TypeError):
        STAGE_DIRS['cam'] = 'elsewhere'  # read-only


def test_the_runner_and_the_tools_read_the_table(monkeypatch):
    """The loop's default stages are the evaluated ones; ``make_pseudo_labels.py --stages``
    takes every stage of the table, ``select_psa_params.py --select-on`` every walk stage, and
    both refuse another name with exit status 2."""
    import inspect
    assert inspect.signature(PseudoLabelLoop).parameters['stages'].default is EVALUATED_STAGES
    select = load_tool('select_psa_params.py')
    base = ['c', '--sweep', 'walk', '--cam-checkpoint', 'x', '--select-on']
    assert [select.parse_args(base + [stage]).select_on for stage in WALK_STAGES] == \
        list(WALK_STAGES)
    make = load_tool('make_pseudo_labels.py')
    for stage in STAGE_NAMES:
        monkeypatch.setattr(sys, 'argv', ['make_pseudo_labels.py', 'c', '--cam-checkpoint', 'x',
                                          '--stages', stage])
        assert make.parse_args().stages == [stage]
    for refused in ('cam', 'affinity_labels'):
        with pytest.raises(SystemExit) as e:
            select.parse_args(base + [refused])
        assert e.value.code == 2
    monkeypatch.setattr(sys, 'argv', ['make_pseudo_labels.py', 'c', '--cam-checkpoint', 'x',
                                      '--stages', 'crf'])
    with pytest.raises(SystemExit) as e:
        make.parse_args()
    assert e.value.code == 2


def test_the_stage_functions_do_what_the_table_says():
    """A stage needs the affinities iff it walks in ``stage_labels``, and the CRF iff its label
    comes out of ``crf_stage_labels`` (refined unaries) rather than ``stage_labels``."""
    g = torch.Generator().manual_seed(0)
    cams, class_ids = torch.rand(2, 16, 16, generator=g), torch.tensor([0, 3])
    aff = torch.rand(1, 4, 6, generator=g)  # radius 2 on the 4 x 4 grid of stride 4
    for stage in PSA_STAGES:
        if stage.needs_affinity_net:
            with pytest.raises(ValueError, match='pass the affinities'):
                stage_labels(cams, class_ids, (stage.name, ))
        labels, unaries = stage_labels(cams, class_ids, (stage.name, ),
                                       aff if stage.needs_affinity_net else None, radius=2,
                                       stride=4, rw_logt=1)
        if stage.needs_crf:
            assert labels == {} and unaries
            refined = {k: np.asarray(v) for k, v in unaries.items()}  # an identity "CRF"
            assert set(crf_stage_labels(refined, class_ids)) == {stage.name}
        else:
            assert set(labels) == {stage.name} and unaries == {}


def _stage_name_collections(path: str) -> list:
    """``line: source`` of every literal tuple / list / set of two or more stage names."""
    tree = ast.parse(open(path).read())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2 and all(
                isinstance(e, ast.Constant) and e.value in STAGE_NAMES for e in node.elts):
            found.append(f'{osp.relpath(path, REPO)}:{node.lineno}: {ast.unparse(node)}')
    return found


def test_no_stage_set_is_written_out_beside_the_table():
    paths = [p for pattern in ('mmaffseg/**/*.py', 'tools/**/*.py')
             for p in glob.glob(osp.join(REPO, pattern), recursive=True)
             if not p.endswith(osp.join('ops', 'psa_stages.py'))]
    assert len(paths) > 100
    found = [f for path in sorted(paths) for f in _stage_name_collections(path)]
    assert found == [], 'derive these from mmaffseg.ops.psa_stages: ' + '; '.join(found)
