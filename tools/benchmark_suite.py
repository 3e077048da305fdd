# Copyright (c) mmaffseg contributors. All rights reserved.
"""Train and evaluate every method of a benchmark suite under one protocol.

    python tools/benchmark_suite.py SUITE --data-root D --work-dir W [--seeds 0 1 2]
        [--launcher none|pytorch|slurm] [--gpus N] [--methods M ...] [--tiny] [--tta]
        [--test-mode protocol|slide] [--amp [auto|bfloat16|float16]] [--channels-last]
        [--cfg-options k=v ...] [--collect-only] [--overwrite]

SUITE is a name of ``configs/benchmark/suites`` (``cityscapes``, ``synthetic``) or a suite file:
the methods (configs of ``configs/benchmark``) and the options every method's config gets.

Each (method, seed) is one run folder ``W/<method>/seed<k>/`` holding the exact config
(``config.py``), the hash of its flattened training settings (``config_hash``), mmseg's
checkpoints and logs, and ``done.json`` (written atomically after the final evaluation;
``done-slide.json`` for ``--test-mode slide``). ``W/provenance.json`` records what made every
training (stage ``<method>/seed<k>``: the flattened settings without the test-time ones,
:data:`TEST_ONLY_KEYS`) and each evaluation (stage ``<method>/seed<k>/eval``, or ``eval-slide``:
the sha256 of the evaluated checkpoint, the test-time settings, ``--tta``, ``--flops-shape``,
the suite's image size and speed images), before the work. So another test mode only
evaluates the finished trainings. A rerun:

- skips runs whose ``done.json`` was made from the same inputs;
- resumes an interrupted training from the last checkpoint of its folder (tools/train.py
  ``--resume``, mmengine's resume);
- stops before any work (exit status 2, naming the folder, the run and each changed setting,
  old -> new) when a run or an evaluation was made from other inputs: results of different
  settings are never mixed. ``--overwrite`` removes and redoes exactly those runs (a changed
  evaluation setting re-evaluates, it does not retrain); or use another ``--work-dir``.

One suite process at a time writes W (a second one stops at once, naming the first one's pid).

Training runs tools/train.py in a child process: ``--launcher none`` one process, ``pytorch``
``torchrun --nproc_per_node N`` (mmengine's pytorch launcher), ``slurm`` prints the ``srun``
commands (also written to ``W/slurm_commands.sh``) instead of running them; rerun the suite
with ``--launcher none`` on a GPU node once they finished to evaluate. Evaluation (mmseg's test
loop, one device), parameters, FLOPs, inference speed and peak memory are measured in this
process, on the same device for every run. ``--collect-only`` rebuilds ``results.json``,
``results.md`` and ``results.png`` from the run folders alone; missing runs are listed.

``--amp`` trains every method with automatic mixed precision (bfloat16 autocast on CPU and on
CUDA devices that support it, float16 with dynamic loss scaling on older GPUs; the dtype is
chosen here, from this process's device: name it for ``--launcher slurm``), ``--channels-last``
in the channels-last memory format; both are the same config settings for every method
(:func:`mmaffseg.cli.use_amp`, :func:`mmaffseg.cli.use_channels_last`), so they are part of
each run's recorded settings. Evaluation runs in float32 (in channels-last with
``--channels-last``).

CRF variants (``eval_only`` in the suite) are not trained: they evaluate the checkpoint of
their base method's run of the same seed.

The console shows the suite's progress only: ``[run k/N]`` lines with the current run's
iteration and ETA (from its ``train.log``), the runs done (and those skipped or failed) and a
rough suite ETA; the training output stays in ``train.log``, the evaluation's (environment,
config, test loop) in ``eval.log`` of the run folder.
"""
import argparse
import contextlib
import copy
import datetime
import hashlib
import json
import logging
import math
import os
import os.path as osp
import re
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    TextIO,
    Tuple,
)

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS, MODELS

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.cli import (
    CfgOptionsAction,
    add_precision_args,
    build_runner,
    check_cfg_options,
    exit_with_error,
    load_config,
    normalize_cfg_options,
    training_precision,
    use_amp,
    use_channels_last,
)
from mmaffseg.cli.runner_setup import use_checked_image_loading
from mmaffseg.utils.atomic_io import atomic_write_bytes
from mmaffseg.utils.config_errors import ConfigCheckError, OutputDirError
from mmaffseg.utils.folder_claim import FolderClaim, claim_folder, remove_path
from mmaffseg.utils.folder_lock import FolderLock
from mmaffseg.utils.provenance import Provenance, file_sha256, flatten_settings

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SUITES_DIR = osp.join(REPO, 'configs', 'benchmark', 'suites')
TRAIN_TOOL = osp.join(REPO, 'tools', 'train.py')
# settings that say where/how a run executes, not what it computes: left out of the hash
UNHASHED_KEYS = ('work_dir', 'launcher', 'resume', 'load_from')
# settings only the evaluation reads (the model's test_cfg, the test loader, evaluator and
# loop, TTA, the protocol's sliding windows): recorded with the evaluation, not the training,
# so that another test mode evaluates the same trainings
TEST_ONLY_KEYS = ('model.test_cfg', 'model.segmentor.test_cfg', 'bench_model.test_cfg',
                  'bench_slide_test_cfg', 'test_dataloader', 'test_evaluator', 'test_cfg',
                  'test_pipeline', 'tta_model', 'tta_pipeline')
WRAPPERS = ('CRFRefineSegmentor', )
# --test-mode: 'protocol' evaluates every method as its config says (the whole image; CPNet's
# declared sliding windows), 'slide' every method on the protocol's sliding windows
TEST_MODES = ('protocol', 'slide')
# seconds between two progress lines of one training (its first logged iteration always shows)
PROGRESS_INTERVAL_S = 30.0


class SuiteError(Exception):
    """A request the suite cannot honour without losing or mixing results."""


@METRICS.register_module(force=True)  # loaded again by tests
class BenchmarkIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` that also returns the IoU of every class (``IoU.<class>``)."""

    def compute_metrics(self, results: list) -> Dict[str, float]:
        per_class = {}
        intersect = sum(r[0] for r in results)
        union = sum(r[1] for r in results)
        iou = (intersect / union).numpy() * 100
        for name, value in zip(self.dataset_meta['classes'], iou):
            per_class[f'IoU.{name}'] = None if math.isnan(value) else round(float(value), 2)
        metrics = super().compute_metrics(results)
        metrics.update(per_class)
        return metrics


# ------------------------------------------------------------------------------------------
# configs


def load_suite(suite: str) -> Tuple[Config, str]:
    """The suite config (a name in configs/benchmark/suites or a file) and its path."""
    path = suite if osp.isfile(suite) else osp.join(SUITES_DIR, f'{suite}.py')
    if not osp.isfile(path):
        names = sorted(f[:-3] for f in os.listdir(SUITES_DIR) if f.endswith('.py'))
        raise SuiteError(f'SUITE: no suite {suite!r}: give one of {names} or a suite file')
    return Config.fromfile(path), path


def _plain(obj: Any) -> Any:
    """ConfigDicts and tuples as plain dicts and lists (a stable form for hashing)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def flatten(obj: Any, prefix: str = '') -> Dict[str, Any]:
    """Dotted keys -> leaf values (lists index as ``key.0``) of a config dict."""
    out: Dict[str, Any] = {}
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            out.update(flatten(v, f'{prefix}.{k}' if prefix else str(k)))
    elif isinstance(obj, (list, tuple)) and obj:
        for i, v in enumerate(obj):
            out.update(flatten(v, f'{prefix}.{i}'))
    else:
        out[prefix] = _plain(obj)
    return out


def config_settings(cfg: Config) -> Dict[str, Any]:
    """The flattened settings of a run, without UNHASHED_KEYS (what its results depend on)."""
    return {k: v for k, v in flatten(_plain(cfg.to_dict())).items()
            if k.split('.', 1)[0] not in UNHASHED_KEYS}


def is_test_only(key: str) -> bool:
    """Whether a flattened setting is read by the evaluation only (:data:`TEST_ONLY_KEYS`)."""
    return any(key == k or key.startswith(k + '.') for k in TEST_ONLY_KEYS)


def training_settings(cfg: Config) -> Dict[str, Any]:
    """:func:`config_settings` that the training reads: without :data:`TEST_ONLY_KEYS`."""
    return {k: v for k, v in config_settings(cfg).items() if not is_test_only(k)}


def test_settings(cfg: Config) -> Dict[str, Any]:
    """:func:`config_settings` that only the evaluation reads (:data:`TEST_ONLY_KEYS`)."""
    return {k: v for k, v in config_settings(cfg).items() if is_test_only(k)}


def settings_hash(settings: Dict[str, Any]) -> str:
    """sha256 (first 16 hex digits) of flattened settings."""
    text = json.dumps(settings, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_hash(cfg: Config) -> str:
    """:func:`settings_hash` of the run's :func:`training_settings` (the ``config_hash`` file
    of a run folder)."""
    return settings_hash(training_settings(cfg))


def _replace_sync_bn(node: Any) -> None:
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
        for v in node.values():
            _replace_sync_bn(v)
    elif isinstance(node, list):
        for v in node:
            _replace_sync_bn(v)


def _merge(cfg: Config, options: dict) -> None:
    """Merge nested ``options`` into ``cfg``; ``model`` entries go to a wrapper's segmentor."""
    options = copy.deepcopy(options.to_dict() if isinstance(options, ConfigDict) else options)
    model = options.pop('model', None)
    if options:
        cfg.merge_from_dict(options)
    if model:
        root = 'model.segmentor' if cfg.model.get('type') in WRAPPERS else 'model'
        cfg.merge_from_dict({root: model})


def method_config(suite: Config, suite_path: str, method: str, seed: int, data_root: str,
                  tiny: bool = False, cfg_options: Optional[dict] = None,
                  test_mode: str = 'protocol', amp: Optional[str] = None,
                  channels_last: bool = False, device: Optional[str] = None) -> Config:
    """The exact config of one (method, seed) run of ``suite`` (``test_mode``: one of
    :data:`TEST_MODES`; ``amp``: a choice of :func:`mmaffseg.cli.use_amp` for training on
    ``device``, or None for float32 training)."""
    if method not in suite.methods:
        raise SuiteError(f'--methods: {method!r} is not a method of the suite, which has '
                         f'{list(suite.methods)}')
    path = osp.normpath(osp.join(osp.dirname(suite_path), suite.methods[method]))
    cfg = load_config(path)
    base = suite.get('eval_only', {}).get(method, method)
    _merge(cfg, suite.get('options') or {})
    _merge(cfg, (suite.get('method_options') or {}).get(base, {}))
    if tiny:
        _merge(cfg, suite.get('tiny_options') or {})
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg.randomness = dict(seed=seed)
    if suite.get('replace_sync_bn'):
        model = cfg.model.to_dict()
        _replace_sync_bn(model)
        cfg.model = ConfigDict(model)
    if test_mode == 'slide':
        _use_slide_test(cfg, path)
    try:
        if amp:
            use_amp(cfg, amp, device)
    except ConfigCheckError as e:
        raise SuiteError(f'{path}: {e}') from e
    if channels_last:
        use_channels_last(cfg)
    if cfg_options:
        try:
            check_cfg_options(cfg, cfg_options)
        except ConfigCheckError as e:
            raise SuiteError(str(e)) from e
        cfg.merge_from_dict(normalize_cfg_options(cfg, cfg_options))
    cfg.setdefault('default_scope', 'mmseg')
    return cfg


def _use_slide_test(cfg: Config, path: str) -> None:
    """``--test-mode slide``: the model's test_cfg becomes the protocol's sliding windows."""
    if 'bench_slide_test_cfg' not in cfg:
        raise SuiteError(f'--test-mode slide: {path} has no bench_slide_test_cfg (the '
                         "protocol's sliding windows); inherit configs/benchmark/_base_/"
                         'protocol.py or use --test-mode protocol')
    _merge(cfg, dict(model=dict(test_cfg=cfg.bench_slide_test_cfg.to_dict())))


def test_mode_label(cfg: Config) -> str:
    """How a run's model is evaluated: ``whole`` or ``slide HxW stride hxw``."""
    model = cfg.model.segmentor if cfg.model.get('type') in WRAPPERS else cfg.model
    test_cfg = model.get('test_cfg') or {}
    if test_cfg.get('mode', 'whole') != 'slide':
        return 'whole'
    return 'slide {}x{} stride {}x{}'.format(*test_cfg['crop_size'], *test_cfg['stride'])


# ------------------------------------------------------------------------------------------
# run folders


def _write_json(path: str, data: dict) -> None:
    text = json.dumps(data, indent=1, sort_keys=True,
                      default=lambda o: o.item() if hasattr(o, 'item') else repr(o))
    atomic_write_bytes(path, (text + '\n').encode())


def _read_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def mode_suffix(test_mode: str) -> str:
    """What names the files of a test mode's evaluation: ``''`` for ``protocol``
    (``done.json``, ``eval/``, ``results.md``), ``'-slide'`` for ``slide`` (``done-slide.json``,
    ``eval-slide/``, ``results-slide.md``)."""
    return '' if test_mode == 'protocol' else f'-{test_mode}'


class Run(NamedTuple):
    """One (method, seed) of a suite run: its config, folder and evaluated checkpoint."""
    method: str
    seed: int
    cfg: Config
    digest: str  # config_hash(cfg): the training settings
    run_dir: str
    train_dir: str  # the base method's run folder for an eval-only variant
    checkpoint: str
    base_digest: Optional[str]  # the base method's config_hash for an eval-only variant
    test_mode: str = 'protocol'  # one of TEST_MODES: which evaluation of the run folder

    @property
    def stage(self) -> str:
        """The record's stage of the run (its training settings)."""
        return f'{self.method}/seed{self.seed}'

    @property
    def eval_name(self) -> str:
        """The evaluation's folder and log name, one per test mode: ``eval``,
        ``eval-slide``."""
        return 'eval' + mode_suffix(self.test_mode)

    @property
    def eval_stage(self) -> str:
        """The record's stage of its evaluation in its test mode (``done.json``)."""
        return f'{self.stage}/{self.eval_name}'

    @property
    def eval_outputs(self) -> List[str]:
        """``done<suffix>.json`` first, then the evaluation's folders."""
        names = (f'done{mode_suffix(self.test_mode)}.json', self.eval_name,
                 f'{self.eval_name}-tta')
        return [osp.join(self.run_dir, name) for name in names]


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def eval_inputs(prov: Provenance, run: Run, settings: Dict[str, Any]) -> Dict[str, Any]:
    """What a run's ``done.json`` depends on: the evaluated checkpoint's contents (its
    recorded digest while it is missing, e.g. deleted after the evaluation), the training
    settings' hash, the test-time settings (``test.<key>``) and the evaluation settings."""
    if osp.isfile(run.checkpoint):
        checkpoint = file_sha256(run.checkpoint)
    else:
        checkpoint = ((prov.recorded() or {}).get(run.eval_stage) or {}).get(
            'checkpoint', 'missing')
    inputs = dict(settings, config_hash=run.digest, checkpoint=checkpoint,
                  test=test_settings(run.cfg))
    if run.base_digest is not None:
        inputs['base_config_hash'] = run.base_digest
    return inputs


def training_inputs(recorded: Optional[Dict[str, Any]], cfg: Config) -> Dict[str, Any]:
    """The inputs to declare for a run's training stage: its :func:`training_settings`, or
    the ``recorded`` inputs as they are when they hold the same training settings plus
    test-time ones (a record of an earlier version, which hashed both): the training is
    reused."""
    new = flatten_settings(training_settings(cfg))
    if recorded and any(is_test_only(k) for k in recorded):
        old = {k: v for k, v in recorded.items() if k != 'mmaffseg_version'}
        if {k: v for k, v in old.items() if not is_test_only(k)} == new:
            return old
    return new


def claim_work_dir(work_dir: str, plan: List[Run], settings: Dict[str, Any],
                   overwrite: bool) -> Tuple[Provenance, FolderClaim]:
    """Lock ``work_dir`` and check its record against every run of ``plan``, before any work.

    Run folders of an earlier version (a ``config_hash`` but no record) whose hash matches are
    taken over; their ``done.json`` is re-evaluated with ``--overwrite``.
    """
    prov = Provenance(work_dir, '--work-dir', 'benchmark_suite')
    recorded = prov.recorded() or {}
    outputs: Dict[str, List[str]] = {}
    for run in plan:
        prov.stage(run.stage, training_inputs(recorded.get(run.stage), run.cfg))
        legacy = (run.stage not in recorded and
                  _read_text(osp.join(run.run_dir, 'config_hash')) in (
                      run.digest, settings_hash(config_settings(run.cfg))))
        outputs[run.stage] = [] if legacy else [run.run_dir]
    for run in plan:
        if osp.isfile(run.eval_outputs[0]):
            prov.stage(run.eval_stage, eval_inputs(prov, run, settings))
            outputs[run.eval_stage] = run.eval_outputs
    return prov, claim_folder(prov, outputs, overwrite)


def prepare_run_folder(run_dir: str, cfg: Config, digest: str) -> None:
    """Create the folder with ``config.py`` and ``config_hash`` (its record is checked
    before, by :func:`claim_work_dir`)."""
    hash_file = osp.join(run_dir, 'config_hash')
    if _read_text(hash_file) == digest:
        return
    os.makedirs(run_dir, exist_ok=True)
    cfg.dump(osp.join(run_dir, 'config.py'))
    atomic_write_bytes(hash_file, (digest + '\n').encode())


def final_checkpoint(run_dir: str, cfg: Config) -> str:
    return osp.join(run_dir, f'iter_{cfg.train_cfg.max_iters}.pth')


def train_command(run_dir: str, launcher: str, gpus: int, port: int) -> List[str]:
    config = osp.join(run_dir, 'config.py')
    args = [TRAIN_TOOL, config, '--work-dir', run_dir, '--resume']
    if launcher == 'none':
        return [sys.executable] + args
    if launcher == 'pytorch':
        return [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={gpus}',
                f'--master_port={port}'] + args + ['--launcher', 'pytorch']
    partition = os.environ.get('PARTITION')
    if not partition:
        raise SuiteError('--launcher slurm: set the Slurm partition, e.g. PARTITION=gpu python '
                         'tools/benchmark_suite.py ...')
    return ['srun', '-p', partition, f'--job-name={osp.basename(osp.dirname(run_dir))}',
            f'--gres=gpu:{min(gpus, 8)}', f'--ntasks={gpus}',
            f'--ntasks-per-node={min(gpus, 8)}', '--cpus-per-task=5', '--kill-on-bad-exit=1',
            'python', '-u'] + args + ['--launcher', 'slurm']


def train(run_dir: str, launcher: str, gpus: int, port: int,
          on_iteration: Optional[Callable[[int, int, float], None]] = None) -> None:
    """Train (or resume) in a child process; stdout/stderr appended to ``train.log``;
    ``on_iteration(iteration, max_iters, eta_seconds)`` for each iteration it logs."""
    cmd = train_command(run_dir, launcher, gpus, port)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    start = time.time()
    log_path = osp.join(run_dir, 'train.log')
    with open(log_path, 'a') as log:
        log.write(f'\n$ {shlex.join(cmd)}\n')
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        rc = follow_training(proc, log_path, log.tell(), on_iteration)
    seconds = time.time() - start
    times_file = osp.join(run_dir, 'train_time.json')
    times = _read_json(times_file) or dict(segments=[])
    times['segments'].append(dict(seconds=round(seconds, 1), returncode=rc))
    _write_json(times_file, times)
    if rc != 0:
        raise SuiteError(f'training exited with status {rc}; see {osp.join(run_dir, "train.log")}')


# mmengine's LoggerHook line of a training iteration, e.g.
# "... Iter(train) [ 50/300]  base_lr: ... eta: 0:01:23  time: ..." (eta: "1 day, 2:03:04")
_TRAIN_ITER = re.compile(
    r'Iter\(train\) \[\s*(\d+)/(\d+)\].*?\beta: (?:(\d+) days?, )?(\d+):(\d\d):(\d\d)')


def parse_train_iteration(line: str) -> Optional[Tuple[int, int, float]]:
    """(iteration, max_iters, eta_seconds) of an mmengine training log line, else None."""
    match = _TRAIN_ITER.search(line)
    if match is None:
        return None
    it, total, days, hours, minutes, seconds = match.groups()
    eta = (int(days or 0) * 24 + int(hours)) * 3600 + int(minutes) * 60 + int(seconds)
    return int(it), int(total), float(eta)


def follow_training(proc: subprocess.Popen, log_path: str, offset: int,
                    on_iteration: Optional[Callable[[int, int, float], None]],
                    poll_s: float = 1.0) -> int:
    """Wait for ``proc``; meanwhile read what it appends to ``log_path`` after ``offset`` and
    call ``on_iteration`` for each logged training iteration. Returns the exit status."""
    pending = ''

    def read_new() -> None:
        nonlocal offset, pending
        with open(log_path, errors='replace') as f:
            f.seek(offset)
            pending += f.read()
            offset = f.tell()
        *lines, pending = pending.split('\n')
        for line in lines:
            parsed = parse_train_iteration(line)
            if parsed and on_iteration:
                on_iteration(*parsed)

    while True:
        try:
            rc = proc.wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            read_new()
            continue
        read_new()
        return rc


def _hms(seconds: Optional[float]) -> str:
    return '?' if seconds is None else str(datetime.timedelta(seconds=int(round(seconds))))


class SuiteProgress:
    """The suite's console progress: which run of how many, the current training's iteration
    and ETA, the runs done (and those skipped or failed, counted apart) and a rough suite ETA:
    the current run's remaining training plus, for every later run, the mean duration of the
    runs of its kind (trained or evaluation-only) done so far; before one is done, the current
    training's estimate plus the mean evaluation so far.

    Args:
        eval_only (Sequence[bool]): For each run of the suite, in order, whether it only
            evaluates (a CRF variant).
        interval_s (float): Seconds between two progress lines of one training; the first
            logged iteration of each training always prints.
        clock (Callable[[], float]): The time in seconds.
        write (Callable[[str], None]): Prints one line.
    """

    #: How a run ends: evaluated now; not run here (done before with the same inputs, sent to
    #: Slurm, or its base method's training is missing); failed in training or evaluation.
    OUTCOMES = ('done', 'skipped', 'failed')

    def __init__(self, eval_only: Sequence[bool], interval_s: float = PROGRESS_INTERVAL_S,
                 clock: Callable[[], float] = time.time,
                 write: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
        self.eval_only = list(eval_only)
        self.interval_s = interval_s
        self.clock = clock
        self.write = write
        self.outcomes: Dict[str, int] = dict.fromkeys(self.OUTCOMES, 0)
        self.index = 0
        self.tag = ''
        self.run_seconds: Dict[bool, List[float]] = {True: [], False: []}
        self.eval_seconds: List[float] = []
        self._run_start = self._train_start = 0.0
        self._eval_start: Optional[float] = None
        self._last_line: Optional[float] = None
        self._train_total: Optional[float] = None  # the current training's expected duration
        self._train_left = 0.0

    def start(self, index: int, tag: str) -> None:
        """Run ``index`` (1-based) begins; ``tag`` names it (method and seed)."""
        self.index, self.tag = index, tag
        self._run_start = self.clock()
        self._eval_start = self._last_line = None
        self._train_left = 0.0

    def say(self, message: str) -> None:
        """One line about the current run, with the suite's state."""
        total = len(self.eval_only)
        others = ''.join(f', {n} {outcome}' for outcome, n in self.outcomes.items()
                         if n and outcome != 'done')
        self.write(f'[run {self.index}/{total}] {self.tag}: {message} | suite: '
                   f'{self.outcomes["done"]}/{total} runs done{others}, ETA ~{_hms(self.eta())}')

    def training(self) -> None:
        """The current run's training (or resumed training) begins."""
        self._train_start = self.clock()

    def iteration(self, it: int, total: int, eta_s: float) -> None:
        """A training iteration was logged (``on_iteration`` of :func:`train`)."""
        now = self.clock()
        self._train_total = now - self._train_start + eta_s
        self._train_left = eta_s
        if self._last_line is not None and now - self._last_line < self.interval_s:
            return
        self._last_line = now
        self.say(f'training iter {it}/{total}, run ETA {_hms(eta_s)}')

    def evaluating(self) -> None:
        """The current run's evaluation begins."""
        self._eval_start = self.clock()
        self._train_left = 0.0

    def finished(self, outcome: str = 'done') -> None:
        """The current run ended with ``outcome`` (one of :attr:`OUTCOMES`); only a run done
        now estimates the duration of later runs."""
        if outcome not in self.OUTCOMES:
            raise ValueError(f'outcome {outcome!r} is not one of {self.OUTCOMES}')
        self.outcomes[outcome] += 1
        now = self.clock()
        if outcome == 'done':
            self.run_seconds[self.eval_only[self.index - 1]].append(now - self._run_start)
            if self._eval_start is not None:
                self.eval_seconds.append(now - self._eval_start)

    def _expected(self, eval_only: bool) -> Optional[float]:
        if self.run_seconds[eval_only]:
            return statistics.mean(self.run_seconds[eval_only])
        evaluation = statistics.mean(self.eval_seconds) if self.eval_seconds else 0.0
        if eval_only:
            return evaluation
        return None if self._train_total is None else self._train_total + evaluation

    def eta(self) -> Optional[float]:
        """Seconds until the suite ends; None while there is nothing to estimate it from."""
        later = [self._expected(kind) for kind in self.eval_only[self.index:]]
        if any(v is None for v in later):
            return None
        return self._train_left + sum(later)


@contextlib.contextmanager
def console_to(path: str) -> Iterator[TextIO]:
    """Send this process's console output to ``path`` (appended) meanwhile: ``print``,
    warnings and the log handlers created meanwhile (an mmengine runner's environment and
    config dump); those handlers are removed on the way out."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(path, 'a') as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        try:
            yield f
        finally:
            loggers = [logging.getLogger()] + [
                lg for lg in logging.Logger.manager.loggerDict.values()
                if isinstance(lg, logging.Logger)] + list(
                    getattr(MMLogger, '_instance_dict', {}).values())
            for logger in loggers:
                for handler in list(logger.handlers):
                    if getattr(handler, 'stream', None) is f:
                        logger.removeHandler(handler)


# ------------------------------------------------------------------------------------------
# measurements


def _flops(model: torch.nn.Module, shape: Tuple[int, int]) -> Optional[float]:
    """GFLOPs (multiply-adds, as mmseg counts) of one forward at ``shape``, or None."""
    from mmengine.analysis import get_model_complexity_info
    try:
        with torch.no_grad():
            info = get_model_complexity_info(model, inputs=(torch.zeros(1, 3, *shape), ),
                                             show_table=False, show_arch=False)
    except Exception as e:  # e.g. CPNet's strict prior grid at another size
        print(f'  FLOPs at {shape[0]}x{shape[1]}: not measurable ({type(e).__name__}: {e})')
        return None
    return round(info['flops'] / 1e9, 2)


def _slide_windows(test_cfg: dict, image: Tuple[int, int]) -> int:
    """Number of windows mmseg's slide_inference runs on an ``image``-sized input."""
    if test_cfg.get('mode', 'whole') != 'slide':
        return 1
    (ch, cw), (sh, sw) = test_cfg['crop_size'], test_cfg['stride']
    h, w = image
    return (max(h - ch + sh - 1, 0) // sh + 1) * (max(w - cw + sw - 1, 0) // sw + 1)


def complexity(cfg: Config, image_size: Tuple[int, int],
               flops_shape: Tuple[int, int]) -> Dict[str, Any]:
    """Parameters (inference model), GFLOPs of a whole ``flops_shape`` forward (as
    tools/analysis_tools/get_flops.py) and of the protocol's test on one ``image_size`` image
    (windows x one window)."""
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('pretrained', None)
    model = MODELS.build(model_cfg).eval()
    inner = getattr(model, 'segmentor', model)
    if hasattr(inner, 'drop_training_branches'):
        inner.drop_training_branches()
    inner.auxiliary_head = None  # training only
    params = sum(p.numel() for n, p in model.named_parameters() if 'auxiliary_head' not in n)
    test_cfg = dict(inner.test_cfg or {})
    window = tuple(test_cfg.get('crop_size', image_size)) if test_cfg.get(
        'mode') == 'slide' else tuple(image_size)
    per_window = _flops(model, window)
    windows = _slide_windows(test_cfg, image_size)
    return dict(
        params_m=round(params / 1e6, 2),
        gflops_whole=_flops(model, tuple(flops_shape)),
        gflops_whole_shape=list(flops_shape),
        gflops_per_image=None if per_window is None else round(per_window * windows, 2),
        windows_per_image=windows)


def cached_complexity(cfg: Config, method_dir: str, image_size: Tuple[int, int],
                      flops_shape: Tuple[int, int]) -> Dict[str, Any]:
    """:func:`complexity`, computed once per model config and input sizes (the seeds of a
    method share ``<method>/complexity.json``)."""
    key = hashlib.sha256(json.dumps(
        [_plain(cfg.model.to_dict()), list(image_size), list(flops_shape)], sort_keys=True,
        default=repr).encode()).hexdigest()[:16]
    path = osp.join(method_dir, 'complexity.json')
    cached = _read_json(path)
    if cached and cached.get('key') == key:
        return cached['values']
    values = complexity(cfg, image_size, flops_shape)
    _write_json(path, dict(key=key, values=values))
    return values


def _peak_rss_reset() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_rss_mib() -> Optional[float]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def inference_speed(runner, num_images: int = 10, warmup: int = 2) -> Dict[str, Any]:
    """Images per second of the test path (``model.test_step``, batch 1, data loading not
    timed) on the first images of the test set, and peak memory meanwhile: CUDA's peak
    allocation on a GPU, the process's peak resident set on CPU."""
    model = runner.model
    model.eval()
    loader = runner.test_dataloader
    cuda = next(model.parameters()).is_cuda
    batches = []
    for i, data in enumerate(loader):
        if i >= num_images + warmup:
            break
        batches.append(data)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss_reset = not cuda and _peak_rss_reset()
    elapsed = 0.0
    with torch.no_grad():
        for i, data in enumerate(batches):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.test_step(data)
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                elapsed += time.perf_counter() - start
    timed = max(len(batches) - warmup, 0)
    if cuda:
        memory, kind = round(torch.cuda.max_memory_allocated() / 2**20, 1), 'cuda_max_allocated'
    else:
        memory, kind = (_peak_rss_mib() if rss_reset else None), 'cpu_peak_rss'
    return dict(fps=round(timed / elapsed, 3) if elapsed else None, fps_images=timed,
                peak_memory_mib=memory, memory_kind=kind)


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    import platform
    return f'CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)'


def evaluate(cfg: Config, run_dir: str, checkpoint: str, image_size: Tuple[int, int],
             flops_shape: Tuple[int, int], tta: bool, speed_images: int = 10,
             name: str = 'eval') -> Dict[str, Any]:
    """mmseg's test loop on ``checkpoint`` with per-class IoU, then the measurements; the
    test runs write into ``run_dir/<name>`` and ``run_dir/<name>-tta``."""
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = osp.join(run_dir, name)
    cfg.load_from = checkpoint
    cfg.resume = False
    cfg.launcher = 'none'
    evaluator = dict(cfg.test_evaluator)
    evaluator['type'] = 'BenchmarkIoUMetric'
    cfg.test_evaluator = evaluator
    cfg.default_hooks.pop('visualization', None)
    init_default_scope('mmseg')
    runner = build_runner(cfg)
    metrics = runner.test()
    out: Dict[str, Any] = dict(metrics={k: v for k, v in metrics.items() if '.' not in k or
                                        not k.startswith('IoU.')},
                               per_class_iou={k[4:]: v for k, v in metrics.items()
                                              if k.startswith('IoU.')})
    out['classes'] = list(runner.test_dataloader.dataset.metainfo['classes'])
    out.update(inference_speed(runner, speed_images))
    if tta:
        tta_cfg = copy.deepcopy(cfg)
        tta_cfg.work_dir = osp.join(run_dir, f'{name}-tta')
        tta_cfg.test_dataloader.dataset.pipeline = tta_cfg.tta_pipeline
        tta_cfg.tta_model.module = tta_cfg.model
        tta_cfg.model = tta_cfg.tta_model
        use_checked_image_loading(tta_cfg)
        try:
            tta_metrics = build_runner(tta_cfg).test()
        except Exception as e:  # e.g. an image scaled below a strict CPNet window
            print(f'  multi-scale + flip evaluation failed: {type(e).__name__}: {e}')
            out['tta_error'] = f'{type(e).__name__}: {e}'
        else:
            out['tta_metrics'] = {k: v for k, v in tta_metrics.items()
                                  if not k.startswith('IoU.')}
    out.update(cached_complexity(cfg, osp.dirname(run_dir), image_size, flops_shape))
    out['device'] = device_name()
    return out


# ------------------------------------------------------------------------------------------
# results


def collect(work_dir: str, suite: Config, methods: List[str], seeds: List[int],
            suite_name: str, test_mode: str = 'protocol') -> dict:
    """Read every run folder's evaluation in ``test_mode``; write results.json, results.md
    and results.png in work_dir (``results-slide.*`` for ``slide``)."""
    suffix = mode_suffix(test_mode)
    rows = {}
    for method in methods:
        runs, missing = {}, []
        for seed in seeds:
            done = _read_json(osp.join(work_dir, method, f'seed{seed}', f'done{suffix}.json'))
            if done is None:
                missing.append(seed)
            else:
                runs[str(seed)] = done
        row: Dict[str, Any] = dict(seeds_done=sorted(int(s) for s in runs),
                                   seeds_missing=missing, runs=runs)
        if runs:
            ious = [r['metrics']['mIoU'] for r in runs.values()]
            row['mIoU_mean'] = round(statistics.mean(ious), 2)
            row['mIoU_std'] = round(statistics.stdev(ious), 2) if len(ious) > 1 else None
            first = next(iter(runs.values()))
            classes = first.get('classes') or list(first['per_class_iou'])
            row['per_class_iou_mean'] = {
                c: _mean([r['per_class_iou'].get(c) for r in runs.values()]) for c in classes}
            for key in ('params_m', 'gflops_whole', 'gflops_per_image', 'windows_per_image',
                        'fps', 'peak_memory_mib', 'train_seconds'):
                row[key] = _mean([r.get(key) for r in runs.values()])
            row['memory_kind'] = next(iter(runs.values())).get('memory_kind')
            row['device'] = sorted({r.get('device') for r in runs.values()})
            row['config_hash'] = sorted({r.get('config_hash') for r in runs.values()})
            row['test_mode'] = ', '.join(sorted({r.get('test_mode') or '—'
                                                 for r in runs.values()}))
            row['training'] = ', '.join(sorted({training_label(r) for r in runs.values()}))
            tta = [r['tta_metrics']['mIoU'] for r in runs.values() if r.get('tta_metrics')]
            if tta:
                row['tta_mIoU_mean'] = round(statistics.mean(tta), 2)
        rows[method] = row
    results = dict(suite=suite_name, seeds=seeds, test_mode=test_mode, methods=rows,
                   eval_only=dict(suite.get('eval_only', {})))
    _write_json(osp.join(work_dir, f'results{suffix}.json'), results)
    atomic_write_bytes(osp.join(work_dir, f'results{suffix}.md'),
                       results_markdown(results).encode())
    plot(results, osp.join(work_dir, f'results{suffix}.png'))
    return results


def training_label(done: dict) -> str:
    """How a run trained, from its ``done.json``: ``fp32``, ``AMP bf16`` or ``AMP fp16``,
    with ``+ channels-last``."""
    amp = done.get('amp')
    label = {None: 'fp32', 'bfloat16': 'AMP bf16', 'float16': 'AMP fp16'}.get(amp, f'AMP {amp}')
    return label + (' + channels-last' if done.get('channels_last') else '')


def _mean(values: list) -> Optional[float]:
    values = [v for v in values if v is not None]
    return round(statistics.mean(values), 2) if values else None


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return '—'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def results_markdown(results: dict) -> str:
    rows = results['methods']
    lines = [
        f'# Benchmark suite `{results["suite"]}`: seeds {results["seeds"]}, test mode '
        f'{results.get("test_mode", "protocol")}', '',
        'mIoU: mean +- sample standard deviation over the finished seeds (n). GFLOPs: '
        'multiply-adds of the inference path; "whole" = one forward at the size shown '
        '(tools/analysis_tools/get_flops.py), "per image" = the protocol\'s test on one '
        'image at the suite\'s test size (one forward, or windows x one window). fps (batch '
        '1, data loading not timed) and peak memory were measured in each run on the device '
        'shown. Train time: wall seconds of the training processes of a run (mean over '
        'seeds). Eval-only variants '
        '(CRF) reuse their base method\'s checkpoint and train time. Test: how the method was '
        'evaluated, the whole image or sliding windows (size, stride). Training: its precision '
        '(fp32, or AMP bf16 / fp16: tools/benchmark_suite.py --amp) and memory format '
        '(--channels-last); evaluation and fps run in fp32, in the training\'s memory format.',
        '',
        '| method | mIoU | n | seeds missing | params (M) | GFLOPs whole | GFLOPs per image | '
        'fps | peak mem (MiB) | train time (s) | test | training |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for method, r in rows.items():
        if 'mIoU_mean' not in r:
            lines.append(f'| {method} | missing | 0 | {r["seeds_missing"]} | | | | | | | | |')
            continue
        miou = f'{r["mIoU_mean"]:.2f}' + (
            f' +- {r["mIoU_std"]:.2f}' if r['mIoU_std'] is not None else '')
        lines.append(
            f'| {method} | {miou} | {len(r["seeds_done"])} | {r["seeds_missing"] or ""} | '
            f'{_fmt(r["params_m"])} | {_fmt(r["gflops_whole"])} | '
            f'{_fmt(r["gflops_per_image"])} | {_fmt(r["fps"])} | '
            f'{_fmt(r["peak_memory_mib"], 0)} | {_fmt(r["train_seconds"], 0)} | '
            f'{r["test_mode"]} | {r["training"]} |')
    done = [r for r in rows.values() if 'mIoU_mean' in r]
    if done:
        first = next(iter(done))
        shape = next(iter(first['runs'].values())).get('gflops_whole_shape') or []
        lines += ['', f'Devices: {sorted({d for r in done for d in r["device"]})}; '
                  f'memory: {first["memory_kind"]}; GFLOPs whole at '
                  f'{"x".join(map(str, shape))}.']
        if any('tta_mIoU_mean' in r for r in done):
            lines += ['', '| method | mIoU multi-scale + flip |', '|---|---|']
            lines += [f'| {m} | {_fmt(r.get("tta_mIoU_mean"))} |' for m, r in rows.items()
                      if 'tta_mIoU_mean' in r]
        classes = list(first['per_class_iou_mean'])  # in the dataset's order
        lines += ['', '## Per-class IoU (mean over seeds)', '',
                  '| method | ' + ' | '.join(classes) + ' |',
                  '|---|' + '---|' * len(classes)]
        for method, r in rows.items():
            if 'mIoU_mean' in r:
                lines.append(f'| {method} | ' + ' | '.join(
                    _fmt(r['per_class_iou_mean'].get(c), 1) for c in classes) + ' |')
    return '\n'.join(lines) + '\n'


def plot(results: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = {m: r for m, r in results['methods'].items() if 'mIoU_mean' in r}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(rows)
    # a method not tested on the whole image is labelled with its test mode, e.g. "(slide)"
    labels = {m: m if rows[m].get('test_mode', 'whole') in ('whole', '—') else
              f'{m} ({rows[m]["test_mode"].split()[0]})' for m in names}
    means = [rows[m]['mIoU_mean'] for m in names]
    stds = [rows[m]['mIoU_std'] or 0 for m in names]
    ax1.bar(range(len(names)), means, yerr=stds, capsize=4, color='tab:blue')
    ax1.set_xticks(range(len(names)))
    ax1.set_xticklabels([labels[m] for m in names], rotation=35, ha='right')
    ax1.set_ylabel('mIoU (%)')
    ax1.set_title(f'suite {results["suite"]}: mIoU, mean +- std over seeds')
    for m in names:
        if rows[m].get('gflops_per_image') is not None:
            ax2.errorbar(rows[m]['gflops_per_image'], rows[m]['mIoU_mean'],
                         yerr=rows[m]['mIoU_std'] or 0, fmt='o', capsize=3)
            ax2.annotate(labels[m], (rows[m]['gflops_per_image'], rows[m]['mIoU_mean']),
                         textcoords='offset points', xytext=(4, 4), fontsize=8)
    ax2.set_xlabel('GFLOPs per test image (protocol\'s inference)')
    ax2.set_ylabel('mIoU (%)')
    ax2.set_title('mIoU vs FLOPs')
    missing = [m for m, r in results['methods'].items() if 'mIoU_mean' not in r]
    if missing:
        fig.text(0.01, 0.01, f'missing: {", ".join(missing)}', fontsize=8)
    fig.tight_layout()
    fig.savefig(path + '.tmp.png', dpi=100)
    plt.close(fig)
    os.replace(path + '.tmp.png', path)


# ------------------------------------------------------------------------------------------
# driver


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Run a one-protocol benchmark suite')
    parser.add_argument('suite', help='suite name in configs/benchmark/suites, or a suite file')
    parser.add_argument('--data-root', help='dataset root (Cityscapes layout)')
    parser.add_argument('--work-dir', required=True, help='folder of the run folders and results')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', help='a subset of the suite\'s methods')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--gpus', type=int, default=1, help='processes per training run')
    parser.add_argument('--port', type=int, default=29500, help='torchrun master port')
    parser.add_argument('--tiny', action='store_true', help='a few iterations (the suite\'s '
                        'tiny_options), to check a set-up end to end')
    parser.add_argument('--tta', action='store_true',
                        help='also evaluate multi-scale + flip (the config\'s tta_pipeline)')
    parser.add_argument('--test-mode', choices=TEST_MODES, default='protocol',
                        help='protocol: every method as its config says (the whole image; '
                        'CPNet, which cannot, on sliding windows); slide: every method on the '
                        'protocol\'s sliding windows. Evaluation only: each test mode has its '
                        'own evaluation files and results tables, the trainings are shared')
    add_precision_args(parser, 'training of every method')
    parser.add_argument('--flops-shape', type=int, nargs=2, default=[1024, 2048],
                        metavar=('H', 'W'), help='input of the whole-image FLOPs count')
    parser.add_argument('--collect-only', action='store_true',
                        help='only rebuild results.* from the run folders')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override settings of every run (a training setting is part of the '
                        'training\'s record, a test-time one of the evaluation\'s)')
    parser.add_argument('--overwrite', action='store_true',
                        help='redo the runs and evaluations of --work-dir that were made from '
                        'other settings or checkpoints (their files are removed first)')
    return parser.parse_args(argv)


def run_suite(args: argparse.Namespace) -> dict:
    suite, suite_path = load_suite(args.suite)
    methods = list(args.methods or suite.methods)
    eval_only = dict(suite.get('eval_only', {}))
    for m in methods:
        if m not in suite.methods:
            raise SuiteError(f'--methods: {m!r} is not a method of suite {args.suite!r} '
                             f'({list(suite.methods)})')
    if args.collect_only:
        with FolderLock(args.work_dir, '--work-dir'):
            return collect(args.work_dir, suite, methods, args.seeds, args.suite,
                           args.test_mode)
    if not args.data_root:
        raise SuiteError('--data-root is required unless --collect-only')
    # a CRF variant needs its base method's training (in the suite's order)
    needed = [m for m in suite.methods if m in methods or m in
              [eval_only.get(x) for x in methods]]
    plan = plan_runs(args, suite, suite_path, needed)
    settings = eval_settings(args, suite)
    prov, claim = claim_work_dir(args.work_dir, plan, settings, args.overwrite)
    with claim:
        return _run_plan(args, suite, methods, plan, prov, settings)


def plan_runs(args: argparse.Namespace, suite: Config, suite_path: str,
              methods: List[str]) -> List[Run]:
    """Every (seed, method) to run, in order, with its exact config."""
    eval_only = dict(suite.get('eval_only', {}))
    plan: List[Run] = []
    digests: Dict[Tuple[str, int], str] = {}
    # the training device: Slurm trains on GPU nodes this process may not see
    device = 'cuda' if args.launcher == 'slurm' or torch.cuda.is_available() else 'cpu'
    for seed in args.seeds:
        for method in methods:
            cfg = method_config(suite, suite_path, method, seed, args.data_root, args.tiny,
                                args.cfg_options, args.test_mode, args.amp,
                                args.channels_last, device)
            digests[method, seed] = digest = config_hash(cfg)
            run_dir = osp.join(args.work_dir, method, f'seed{seed}')
            base = eval_only.get(method)
            train_dir = osp.join(args.work_dir, base, f'seed{seed}') if base else run_dir
            plan.append(Run(method, seed, cfg, digest, run_dir, train_dir,
                            final_checkpoint(train_dir, cfg),
                            digests.get((base, seed)) if base else None, args.test_mode))
    return plan


def eval_settings(args: argparse.Namespace, suite: Config) -> Dict[str, Any]:
    """The settings of the evaluation that change ``done.json``."""
    return dict(tta=bool(args.tta), flops_shape=list(args.flops_shape),
                image_size=list(suite.get('image_size', (1024, 2048))),
                speed_images=suite.get('speed_images', 10))


def _run_plan(args: argparse.Namespace, suite: Config, methods: List[str], plan: List[Run],
              prov: Provenance, settings: Dict[str, Any]) -> dict:
    image_size = tuple(settings['image_size'])
    slurm_lines = []
    failures = []
    eval_only = dict(suite.get('eval_only', {}))
    progress = SuiteProgress([run.method in eval_only for run in plan])
    for index, run in enumerate(plan, 1):
        method, seed, cfg, digest = run.method, run.seed, run.cfg, run.digest
        tag = f'{method} seed {seed}'
        progress.start(index, tag)
        run_dir, train_dir, checkpoint = run.run_dir, run.train_dir, run.checkpoint
        prepare_run_folder(run_dir, cfg, digest)
        done_file = run.eval_outputs[0]
        if osp.isfile(done_file):
            # checked again now: this suite run may have retrained an eval-only variant's base
            prov.stage(run.eval_stage, eval_inputs(prov, run, settings))
            if not prov.check([run.eval_stage], args.overwrite):
                miou = (_read_json(done_file) or {}).get('metrics', {}).get('mIoU')
                progress.finished('skipped')
                progress.say(f'done (mIoU {miou}), skipped')
                continue
            for path in run.eval_outputs:
                remove_path(path)
        base = run.base_digest is not None
        if not osp.isfile(checkpoint):
            if base:
                progress.finished('skipped')
                progress.say(f'{osp.basename(osp.dirname(train_dir))} seed {seed} has not '
                             'finished training, skipped')
                failures.append(tag)
                continue
            if args.launcher == 'slurm':
                slurm_lines.append(shlex.join(train_command(run_dir, 'slurm', args.gpus,
                                                            args.port)))
                progress.finished('skipped')
                progress.say(f'to train on Slurm: {slurm_lines[-1]}')
                continue
            resumed = osp.isfile(osp.join(run_dir, 'last_checkpoint'))
            progress.say(f'training{" (resuming)" if resumed else ""}, log '
                         f'{osp.join(run_dir, "train.log")}')
            progress.training()
            try:
                train(run_dir, args.launcher, args.gpus, args.port, progress.iteration)
            except SuiteError as e:
                progress.finished('failed')
                progress.say(f'FAILED: {e}')
                failures.append(tag)
                continue
            if not osp.isfile(checkpoint):
                progress.finished('failed')
                progress.say(f'FAILED: no {checkpoint} after training')
                failures.append(tag)
                continue
        eval_log = osp.join(run_dir, f'{run.eval_name}.log')
        progress.say(f'evaluating {checkpoint} ({test_mode_label(cfg)}), log {eval_log}')
        progress.evaluating()
        prov.stage(run.eval_stage, eval_inputs(prov, run, settings))
        prov.write()  # before done.json: what made it is recorded first
        try:
            with console_to(eval_log):
                result = evaluate(cfg, run_dir, checkpoint, image_size, args.flops_shape,
                                  args.tta, suite.get('speed_images', 10), name=run.eval_name)
        except Exception as e:  # reported; the other runs go on, a rerun evaluates again
            progress.finished('failed')
            progress.say(f'FAILED in evaluation: {type(e).__name__}: {e} (see {eval_log})')
            failures.append(tag)
            continue
        times = _read_json(osp.join(train_dir, 'train_time.json')) or dict(segments=[])
        result.update(method=method, seed=seed, config_hash=digest, checkpoint=checkpoint,
                      train_seconds=round(sum(s['seconds'] for s in times['segments']), 1),
                      train_segments=len(times['segments']), suite=args.suite,
                      tiny=args.tiny, test_mode=test_mode_label(cfg),
                      **training_precision(cfg),
                      finished=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
        _write_json(done_file, result)
        progress.finished()
        progress.say(f'mIoU {result["metrics"]["mIoU"]:.2f}')
    if slurm_lines:
        script = osp.join(args.work_dir, 'slurm_commands.sh')
        atomic_write_bytes(script, ('#!/bin/bash\n# run from the repository root\n' +
                                    '\n'.join(slurm_lines) + '\n').encode())
        print(f'Slurm: the training commands are in {script}; when they finished, run this '
              'command again with --launcher none on a GPU node to evaluate.', flush=True)
    results = collect(args.work_dir, suite, methods, args.seeds, args.suite, args.test_mode)
    print(f'results: {osp.join(args.work_dir, f"results{mode_suffix(args.test_mode)}.md")}',
          flush=True)
    if failures:
        print(f'not finished: {failures}', flush=True)
    return results


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    with warnings.catch_warnings():
        # mmengine reloads pkg_resources for every ``mmseg::`` config it reads: one deprecation
        # warning per config (tens of lines) before the progress otherwise
        warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                                category=UserWarning)
        try:
            run_suite(args)
        except SuiteError as e:
            exit_with_error(str(e))
        except OutputDirError as e:  # --work-dir in use, or holding results of other inputs
            exit_with_error(e.strerror)


if __name__ == '__main__':
    main()
