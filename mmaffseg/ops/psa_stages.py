# Copyright (c) mmaffseg contributors. All rights reserved.
"""PSA's pseudo-label stages, written once: what each needs, where it goes, how it is scored.

Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision for Weakly
Supervised Semantic Segmentation", CVPR 2018.

:data:`PSA_STAGES` is the one table of the stages, in pipeline order; the sets the code uses
(the stages that walk, those refined by the CRF, those scored in Table 1, the output folders)
are derived from it below, and the runner, its provenance record, the metric, the tools'
``choices`` and the parameter selection read those. What each stage's label map holds is in
:mod:`mmaffseg.wsss.pseudo_label_stages`, how its files are laid out in
:mod:`mmaffseg.wsss.label_store`. The table sits in this leaf package, beside
:mod:`~mmaffseg.ops.psa_defaults`, so that the metric (``evaluation``) can read it as well as
the loops (``wsss``) and the tools.
"""
from types import MappingProxyType
from typing import Mapping, NamedTuple, Optional, Tuple


class PSAStage(NamedTuple):
    """One output of PSA's pseudo-label runner.

    Args:
        name (str): The stage in configs (``test_cfg.stages``), on the command line and in the
            provenance record.
        folder (str): Its output folder under the runner's ``out_dir``.
        needs_affinity_net (bool): Its labels walk the CAMs with the AffinityNet's affinities.
        needs_crf (bool): Its labels are refined by the dense CRF.
        table1_row (str, optional): Its row of PSA's Table 1 when its labels are scored
            against the ground truth; None when they are not.
        settings (tuple[str]): The loop settings its labels depend on (besides the
            checkpoints, the data and the CRF), recorded by the provenance record.
    """

    name: str
    folder: str
    needs_affinity_net: bool
    needs_crf: bool
    table1_row: Optional[str]
    settings: Tuple[str, ...]

    @property
    def evaluated(self) -> bool:
        """Whether the stage's labels are scored (it has a Table 1 row)."""
        return self.table1_row is not None


_WALK_SETTINGS = ('rw_alpha', 'rw_beta', 'rw_logt')

#: PSA's stages in pipeline order.
PSA_STAGES: Tuple[PSAStage, ...] = (
    PSAStage(name='cam', folder='cam', needs_affinity_net=False, needs_crf=False,
             table1_row='CAM', settings=('cam_bg_score', )),
    PSAStage(name='affinity_labels', folder='affinity_labels', needs_affinity_net=False,
             needs_crf=True, table1_row=None,
             settings=('low_alpha', 'high_alpha', 'ignore_index')),
    PSAStage(name='rw', folder='rw', needs_affinity_net=True, needs_crf=False,
             table1_row='CAM + RW', settings=_WALK_SETTINGS),
    PSAStage(name='rw_crf', folder='rw_crf', needs_affinity_net=True, needs_crf=True,
             table1_row='CAM + RW + dCRF', settings=_WALK_SETTINGS),
)

#: The stage names, in pipeline order.
STAGE_NAMES: Tuple[str, ...] = tuple(stage.name for stage in PSA_STAGES)
#: Stage -> output folder.
STAGE_DIRS: Mapping[str, str] = MappingProxyType({s.name: s.folder for s in PSA_STAGES})
#: The stages that need the AffinityNet's affinities (the random walk).
WALK_STAGES: Tuple[str, ...] = tuple(s.name for s in PSA_STAGES if s.needs_affinity_net)
#: The stages made from the CAMs alone (before an AffinityNet is trained).
CAM_STAGES: Tuple[str, ...] = tuple(s.name for s in PSA_STAGES if not s.needs_affinity_net)
#: The stages refined by the dense CRF.
CRF_STAGES: Tuple[str, ...] = tuple(s.name for s in PSA_STAGES if s.needs_crf)
#: The stages scored against the ground truth, PSA's Table 1 (the runner's default stages).
EVALUATED_STAGES: Tuple[str, ...] = tuple(s.name for s in PSA_STAGES if s.evaluated)
