# Copyright (c) mmaffseg contributors. All rights reserved.
"""Hostile-input and fault audit: runs the real tools on bad inputs and under kills.

The project's hostile-input audit. On a tiny synthetic dataset (6 training and 3 validation
images of 64x128) it runs ``tools/train.py``, ``tools/test.py``, ``tools/make_pseudo_labels.py``,
``tools/deployment/pytorch2onnx.py`` and ``mmseg.apis.init_model`` (mmaffseg's safe loading,
imported through the config) as subprocesses, as a user would, against bad checkpoints,
configs, data and output folders, reruns into output folders made from other checkpoints or
settings and runs into folders another run writes (the provenance and lock cases, also for
``tools/select_psa_params.py`` and ``tools/benchmark_suite.py``), and injects faults (SIGKILL
mid-run, truncated files, corrupted CAM caches). Every bad input is classified as

* ``clear error``: non-zero exit, a message naming the file or argument after the last
  traceback (if any) printed;
* ``unclear error``: non-zero exit and no traceback at the end, but the file/argument unnamed;
* ``raw traceback``: a traceback is the last thing printed (or killed by a signal);
* ``silent``: exit 0 on an input that should fail (or a pickled payload ran);
* ``ok``: a legitimately handled input (documented behaviour);

and every fault as ``survived`` (the rerun completes, outputs identical to an uninterrupted
run) or ``lost``. Prints a table and the totals; takes several minutes on 2 CPU cores::

    OMP_NUM_THREADS=1 python tests/hostile_input_audit.py [--work-dir D] [-j 2]

It is part of the test suite's machinery, not a tool: it reuses the tests' helpers
(``tests/payloads.py`` for the pickled payloads, the tiny dataset overrides, the bad-checkpoint
builders) and runs from a source checkout. Each problem it found is pinned by a test.
"""
import argparse
import concurrent.futures
import contextlib
import filecmp
import os
import os.path as osp
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

TESTS = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(TESTS)
for _p in (osp.join(TESTS, 'test_wsss'), osp.join(TESTS, 'test_cli'), TESTS, REPO):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from payloads import (  # noqa: E402
    FilePayload,
    ObjectPointerArray,
    ZeroStrideArray,
    save_payload,
    save_zip_bomb,
    serve_folder,
    zero_stride_tensor,
)
from test_checkpoint_tools import _bad_checkpoints  # noqa: E402
from test_pseudo_label_faults import _argv, _with_nan_weight  # noqa: E402
from test_pseudo_label_loop import PL_CFG, make_psa_checkpoints  # noqa: E402
from test_pseudo_label_provenance import other_weights  # noqa: E402
from test_tools_round_trip import QUICKSTART, _options  # noqa: E402

from mmaffseg.utils.folder_lock import LOCK_NAME  # noqa: E402
from mmaffseg.utils.provenance import RECORD_NAME  # noqa: E402

ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
           PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get('PYTHONPATH')) if p))
ENV.pop('MMAFFSEG_TRUSTED_CHECKPOINTS', None)
TIMEOUT = 600


@dataclass
class Result:
    category: str
    name: str
    outcome: str
    detail: str = ''
    seconds: float = 0.0


@dataclass
class Case:
    """One bad input: ``argv`` run with python; ``names`` must all appear in the error."""
    category: str
    name: str
    argv: List[str]
    names: List[str]
    marker: Optional[str] = None  # a payload's marker file: it must not appear
    ok: Optional[Callable[[int, str], bool]] = None  # legitimately handled if it returns True
    env: dict = field(default_factory=dict)
    log: Optional[str] = None  # the command and its output are written here
    api: bool = False  # a library call: an exception naming the file is the clear error


def run_python(argv: list, env: Optional[dict] = None, timeout: int = TIMEOUT):
    """Run ``python ARGV`` in the checkout; returns (exit status, stdout + stderr)."""
    try:
        proc = subprocess.run([sys.executable] + argv, cwd=REPO, capture_output=True,
                              text=True, timeout=timeout, env=dict(ENV, **(env or {})))
    except subprocess.TimeoutExpired as e:
        return -9, f'timed out after {timeout} s\n{e.stdout or ""}{e.stderr or ""}'
    return proc.returncode, proc.stdout + proc.stderr


def classify(case: Case, code: int, out: str) -> Result:
    if case.marker and osp.exists(case.marker):
        return Result(case.category, case.name, 'silent', 'THE PAYLOAD RAN')
    lines = [line for line in out.splitlines() if line.strip()]
    last = lines[-1][:160] if lines else ''
    if code == 0:
        if case.ok is not None and case.ok(code, out):
            return Result(case.category, case.name, 'ok', last)
        return Result(case.category, case.name, 'silent', f'exit 0: {last}')
    tb = max((i for i, line in enumerate(lines) if 'Traceback (most recent call last)' in line),
             default=-1)
    after = lines[tb + 1:]
    if tb >= 0:
        # the traceback's exception line, then what follows it (no longer indented)
        unindented = [line for line in after if not line.startswith(' ')]
        if unindented and 'ChildFailedError' in unindented[0]:
            # torchrun's closing failure report: its root cause, indented, is the message
            after = after[next((i for i, line in enumerate(after) if 'Root Cause' in line), 0):]
        else:
            # a library call: the exception's own line is the error, it must name the file
            after = unindented[:1] if case.api else unindented[1:]
    if code < 0 or (tb >= 0 and not after):
        return Result(case.category, case.name, 'raw traceback', f'exit {code}: {last}')
    message = '\n'.join(after)
    missing = [n for n in case.names if n not in message]
    if missing:
        return Result(case.category, case.name, 'unclear error',
                      f'exit {code}, {missing[0]!r} not named: {last}')
    return Result(case.category, case.name, 'clear error', f'exit {code}: {last}')


def run_case(case: Case) -> Result:
    start = time.time()
    code, out = run_python(case.argv, case.env)
    if case.log:
        with open(case.log, 'w') as f:
            f.write(f'$ python {" ".join(case.argv)}\nexit {code}\n{out}')
    result = classify(case, code, out)
    result.seconds = time.time() - start
    return result


# ------------------------------------------------------------------------------ set-up


def train_argv(work: str, root: str, iters: int, *extra: str, options=()) -> list:
    return (['tools/train.py', QUICKSTART, '--work-dir', work, *extra, '--cfg-options'] +
            _options(root, iters) + ['train_cfg.val_interval=100'] + list(options))


def test_argv(ckpt: str, root: str, work: str, *extra: str, options=()) -> list:
    return (['tools/test.py', QUICKSTART, ckpt, '--work-dir', work, *extra, '--cfg-options'] +
            _options(root, 2) + list(options))


def pl_argv(*args, **kwargs) -> list:
    """tools/make_pseudo_labels.py's arguments (as the pseudo-label fault tests give them)."""
    return ['tools/make_pseudo_labels.py'] + _argv(*args, **kwargs)[1:]


def copy_dataset(root: str, dst: str) -> str:
    shutil.copytree(root, dst)
    return dst


def split_files(root: str, split: str, kind: str) -> list:
    folder = osp.join(root, 'leftImg8bit' if kind == 'img' else 'gtFine', split)
    suffix = '_leftImg8bit.png' if kind == 'img' else '_gtFine_labelTrainIds.png'
    return sorted(osp.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                  if f.endswith(suffix))


def weights(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def same_weights(a: str, b: str) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def tree_files(folder: str, skip=('log', )) -> dict:
    found = {}
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if osp.relpath(osp.join(dirpath, d), folder) not in skip]
        for f in files:
            if f != LOCK_NAME:  # the pid of the last run, not an output
                found[osp.relpath(osp.join(dirpath, f), folder)] = osp.join(dirpath, f)
    return found


def same_tree(a: str, b: str) -> str:
    """'' when the output folders hold byte-identical files, else what differs."""
    fa, fb = tree_files(a), tree_files(b)
    if fa.keys() != fb.keys():
        return f'files differ: {sorted(set(fa) ^ set(fb))[:3]}'
    differ = [k for k in fa if not filecmp.cmp(fa[k], fb[k], shallow=False)]
    return f'{len(differ)} files differ, e.g. {differ[0]}' if differ else ''


# ------------------------------------------------------------------------------ cases


def bad_input_cases(w: str, root: str, good: str, cam: str, aff: str, url: str) -> List[Case]:
    work = lambda name: osp.join(w, 'runs', name)  # noqa: E731
    bad = _bad_checkpoints(good, pathlib.Path(w))
    flipped = osp.join(w, 'bitflipped.pth')
    data = bytearray(open(good, 'rb').read())
    for i in range(1, 8):
        data[i * len(data) // 8] ^= 0xFF  # a flipped byte in each eighth of the zip
    open(flipped, 'wb').write(bytes(data))
    bad['bit-flipped'] = flipped
    weights_only = osp.join(w, 'weights_only.pth')
    torch.save(dict(state_dict=weights(good)), weights_only)
    marker_local, marker_http = osp.join(w, 'marker_local'), osp.join(w, 'marker_http')
    payload = osp.join(w, 'payload.pth')
    save_payload(payload, FilePayload(marker_local))
    cases = []
    for kind, path in bad.items():
        cases.append(Case('checkpoint', f'test.py CKPT {kind}',
                          test_argv(path, root, work(f'test_{kind}')), [path, 'CHECKPOINT']))
    cases += [
        Case('checkpoint', 'train.py --resume weights-only ckpt',
             train_argv(work('resume_wo'), root, 3, '--resume', weights_only),
             [weights_only, '--resume']),
        Case('checkpoint', 'train.py --resume random bytes',
             train_argv(work('resume_rand'), root, 3, '--resume', bad['random']),
             [bad['random'], '--resume']),
        Case('checkpoint', 'train.py load_from truncated',
             train_argv(work('lf_trunc'), root, 3, options=[f'load_from={bad["truncated"]}']),
             [bad['truncated'], 'load_from']),
        Case('checkpoint', 'train.py load_from pickled payload (local)',
             train_argv(work('lf_payload'), root, 3, options=[f'load_from={payload}']),
             [payload, 'MMAFFSEG_TRUSTED_CHECKPOINTS'], marker=marker_local),
        Case('checkpoint', 'train.py load_from pickled payload (http 127.0.0.1)',
             train_argv(work('lf_http'), root, 3, options=[f'load_from={url}']),
             [url, 'MMAFFSEG_TRUSTED_CHECKPOINTS'], marker=marker_http,
             env=dict(TORCH_HOME=osp.join(w, 'torch_home'))),
        Case('checkpoint', 'test.py CKPT pickled payload (local)',
             test_argv(payload, root, work('test_payload')),
             [payload, 'MMAFFSEG_TRUSTED_CHECKPOINTS'], marker=marker_local),
        Case('checkpoint', 'make_pseudo_labels --cam-checkpoint truncated',
             pl_argv(root, bad['truncated'], None, osp.join(w, 'pl_trunc'), '--stages', 'cam'),
             [bad['truncated'], '--cam-checkpoint']),
        Case('checkpoint', 'make_pseudo_labels --aff-checkpoint = the CAM model',
             pl_argv(root, cam, cam, osp.join(w, 'pl_wrongaff'), '--no-crf'),
             [cam, '--aff-checkpoint']),
        Case('checkpoint', 'pytorch2onnx CKPT random bytes',
             ['tools/deployment/pytorch2onnx.py', QUICKSTART, bad['random'], '--shape', '64',
              '128', '--out', osp.join(w, 'x.onnx')], [bad['random'], 'CHECKPOINT']),
        Case('checkpoint', 'mmseg.apis.init_model truncated',
             ['-c', 'import sys\nfrom mmseg.apis import init_model\n'
              f'init_model({osp.join(REPO, QUICKSTART)!r}, {bad["truncated"]!r}, '
              'device="cpu")'], [bad['truncated']], api=True),
        Case('checkpoint', 'mmseg.apis.init_model pickled payload',
             ['-c', 'import sys\nfrom mmseg.apis import init_model\n'
              f'init_model({osp.join(REPO, QUICKSTART)!r}, {payload!r}, device="cpu")'],
             [payload, 'MMAFFSEG_TRUSTED_CHECKPOINTS'], marker=marker_local, api=True),
    ]
    # configs
    missing_cfg = osp.join(w, 'no_such_config.py')
    cases += [
        Case('config', 'train.py missing config file',
             ['tools/train.py', missing_cfg, '--work-dir', work('nocfg')], [missing_cfg]),
        Case('config', 'train.py --cfg-options misspelt key',
             train_argv(work('badkey'), root, 1,
                        options=['model.decode_head.num_clases=19']), ['num_clases']),
        Case('config', 'train.py num_classes 25 > dataset 19',
             train_argv(work('nc25'), root, 1, options=['model.decode_head.num_classes=25',
                                                        'model.auxiliary_head.num_classes=25']),
             ['num_classes', '25']),
        Case('config', 'train.py num_classes 5 < dataset 19',
             train_argv(work('nc5'), root, 1, options=['model.decode_head.num_classes=5',
                                                       'model.auxiliary_head.num_classes=5']),
             ['num_classes', '5']),
        Case('config', 'train.py SyncBN, 2 CPU processes (torchrun)',
             ['-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29517'] +
             train_argv(work('syncbn'), root, 1, '--launcher', 'pytorch', options=[
                 'model.backbone.norm_cfg.type=SyncBN',
                 'model.decode_head.norm_cfg.type=SyncBN',
                 'model.auxiliary_head.norm_cfg.type=SyncBN']), ['synchronised BatchNorm']),
    ]
    # data: copies of the dataset with every training image/label broken the same way. The
    # synthetic dataset generates itself where it is missing: auto_generate=False audits the
    # checks a real dataset gets.
    no_generate = [f'{loader}.dataset.auto_generate=False'
                   for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    missing_root = osp.join(w, 'no_such_data_root')
    cases.append(Case('data', 'train.py missing data_root',
                      train_argv(work('noroot'), missing_root, 1, options=no_generate),
                      [missing_root]))

    def broken(name: str, kind: str, write: Callable[[str], None], needle: str) -> Case:
        slug = ''.join(c if c.isalnum() else '_' for c in name)
        dst = copy_dataset(root, osp.join(w, 'data_' + slug))
        for path in split_files(dst, 'train', kind):
            write(path)
        # every training file is broken the same way: the error must name one of them (the
        # dataloader's order decides which)
        broken_folder = osp.join(dst, 'leftImg8bit' if kind == 'img' else 'gtFine', 'train')
        return Case('data', f'train.py {name}',
                    train_argv(work('d_' + slug), dst, 1, options=no_generate),
                    [broken_folder, needle])

    cases += [
        broken('empty image', 'img', lambda p: open(p, 'wb').close(), 'empty'),
        broken('1x1 image', 'img',
               lambda p: cv2.imwrite(p, np.full((1, 1, 3), 128, np.uint8)), '1x1'),
        broken('random-bytes image', 'img',
               lambda p: open(p, 'wb').write(np.random.default_rng(0).bytes(4096)), 'image'),
        broken('label value 19', 'ann', lambda p: cv2.imwrite(
            p, np.where(cv2.imread(p, cv2.IMREAD_UNCHANGED) == 0, 19,
                        cv2.imread(p, cv2.IMREAD_UNCHANGED)).astype(np.uint8)), '19'),
        broken('label value 200', 'ann', lambda p: cv2.imwrite(
            p, np.where(cv2.imread(p, cv2.IMREAD_UNCHANGED) == 0, 200,
                        cv2.imread(p, cv2.IMREAD_UNCHANGED)).astype(np.uint8)), '200'),
        broken('label of the wrong shape', 'ann',
               lambda p: cv2.imwrite(p, np.zeros((32, 64), np.uint8)), '32'),
    ]
    nan_cam = _with_nan_weight(cam, osp.join(w, 'cam_nan.pth'))
    nan_aff = _with_nan_weight(aff, osp.join(w, 'aff_nan.pth'))
    pickled_npy = osp.join(w, 'cls_labels.npy')
    np.save(pickled_npy, np.array([FilePayload(marker_local)], dtype=object),
            allow_pickle=True)
    cases += [
        Case('data', 'make_pseudo_labels NaN weight in the CAM ckpt',
             pl_argv(root, nan_cam, aff, osp.join(w, 'pl_nancam'), '--no-crf'),
             [nan_cam, 'NaN']),
        Case('data', 'make_pseudo_labels NaN weight in the AffinityNet ckpt',
             pl_argv(root, cam, nan_aff, osp.join(w, 'pl_nanaff'), '--no-crf'),
             [nan_aff, 'NaN']),
        Case('data', 'make_pseudo_labels pickled .npy label file',
             pl_argv(root, cam, None, osp.join(w, 'pl_npy'), '--stages', 'cam') +
             [f'test_dataloader.dataset.pipeline.2.label_file={pickled_npy}'],
             [pickled_npy], marker=marker_local),
    ]
    # output folders
    blocker = osp.join(w, 'a_regular_file')
    open(blocker, 'w').write('not a folder')
    under = osp.join(blocker, 'sub')
    if os.geteuid() == 0:  # root writes into chmod 555 folders: a folder it cannot create
        read_only = '/proc/self/mmaffseg_audit_ro'
    else:
        read_only = osp.join(w, 'read_only')
        os.makedirs(read_only)
        os.chmod(read_only, 0o555)
    cases += [
        Case('output', 'train.py --work-dir under a regular file',
             train_argv(under, root, 1), [under]),
        Case('output', 'train.py --work-dir read-only',
             train_argv(read_only, root, 1), [read_only]),
        Case('output', 'test.py --out under a regular file',
             test_argv(good, root, work('test_out'), '--out', under), [under]),
        Case('output', 'make_pseudo_labels --out under a regular file',
             pl_argv(root, cam, aff, under, '--no-crf', work_dir=work('pl_under')),
             [under, '--out']),
        Case('output', 'make_pseudo_labels --out read-only',
             pl_argv(root, cam, aff, read_only, '--no-crf', work_dir=work('pl_ro')),
             [read_only, '--out']),
        Case('output', 'pytorch2onnx --out under a regular file',
             ['tools/deployment/pytorch2onnx.py', QUICKSTART, good, '--shape', '64', '128',
              '--out', osp.join(under, 'm.onnx')], [under]),
    ]
    cases += work_dir_cases(w, root, osp.dirname(good))
    cases += image_label_config_cases(w, root, work, no_generate)
    return cases + checkpoint_loader_cases(w, root, good, url)


# ------------------------------------------------------------------------------ cases: the
# checkpoint loader (download cache, numpy state, resource bombs)


def checkpoint_loader_cases(w: str, root: str, good: str, url: str) -> List[Case]:
    """A poisoned download cache, numpy state that crashed the process, and checkpoints far
    larger once loaded than on disk (``url``: the served payload, whose folder serves more)."""
    work = lambda name: osp.join(w, 'runs', name)  # noqa: E731
    folder = osp.join(w, 'loader')
    os.makedirs(folder, exist_ok=True)
    checkpoint = torch.load(good, map_location='cpu', weights_only=False)

    def resume_file(name: str, payload) -> str:
        """The good checkpoint with ``payload`` in the message hub's runtime info (which
        resuming deep-copies)."""
        path = osp.join(folder, f'{name}.pth')
        hub = dict(checkpoint['message_hub'])
        hub['runtime_info'] = dict(hub['runtime_info'], crafted=payload)
        hub['resumed_keys'] = dict(hub['resumed_keys'], crafted=True)
        torch.save(dict(checkpoint, message_hub=hub), path)
        return path

    def meta_file(name: str, payload) -> str:
        path = osp.join(folder, f'{name}.pth')
        torch.save(dict(checkpoint, meta=dict(checkpoint['meta'], note=payload)), path)
        return path

    pointer_resume = resume_file('object_pointer_resume', ObjectPointerArray())
    pointer_meta = meta_file('object_pointer_meta', ObjectPointerArray())
    strided_tensor = resume_file('zero_stride_tensor', zero_stride_tensor())
    strided_array = meta_file('zero_stride_array', ZeroStrideArray())
    bomb = osp.join(folder, 'zip_bomb.pth')
    save_zip_bomb(bomb, inflated=1 << 30)  # 1 GiB of pickle in about 1 MiB
    # the download cache: b/model.pth (a payload) refused first, then a/model.pth trusted
    base, served = url.rsplit('/', 1)[0], osp.join(w, 'served')
    marker_b = osp.join(w, 'marker_cache')
    os.makedirs(osp.join(served, 'a'), exist_ok=True)
    os.makedirs(osp.join(served, 'b'), exist_ok=True)
    shutil.copy(good, osp.join(served, 'a', 'model.pth'))
    save_payload(osp.join(served, 'b', 'model.pth'), FilePayload(marker_b))
    cache_env = dict(TORCH_HOME=osp.join(w, 'torch_home_cache'))
    code, _ = run_python(test_argv(f'{base}/b/model.pth', root, work('cache_b')), cache_env)
    assert code == 2, f'the refused download of b/model.pth exited {code}'
    trusted_a = dict(cache_env, MMAFFSEG_TRUSTED_CHECKPOINTS=f'{base}/a/model.pth')
    return [
        Case('checkpoint', 'train.py --resume numpy dtype with an object field (was SIGSEGV)',
             train_argv(work('resume_pointer'), root, 3, '--resume', pointer_resume),
             [pointer_resume, '--resume']),
        Case('checkpoint', 'test.py CKPT numpy dtype with an object field in meta (was exit 0)',
             test_argv(pointer_meta, root, work('test_pointer')), [pointer_meta, 'CHECKPOINT']),
        Case('checkpoint', 'train.py --resume zero-stride 2 GiB tensor (8 bytes on disk)',
             train_argv(work('resume_strided'), root, 3, '--resume', strided_tensor),
             [strided_tensor, '--resume']),
        Case('checkpoint', 'test.py CKPT zero-stride 2 GiB numpy array in meta',
             test_argv(strided_array, root, work('test_strided')),
             [strided_array, 'CHECKPOINT']),
        Case('checkpoint', 'test.py CKPT zip bomb (1 GiB data.pkl in 1 MiB)',
             test_argv(bomb, root, work('test_bomb')), [bomb, 'CHECKPOINT']),
        Case('checkpoint', 'test.py trusted http a/model.pth after a refused b/model.pth '
             '(was: b unpickled from the cache)',
             test_argv(f'{base}/a/model.pth', root, work('cache_a')), [], marker=marker_b,
             ok=lambda code, out: code == 0, env=trusted_a),
    ]


# ----------------------------------------------- images, labels, configs and arguments


def image_label_config_cases(w: str, root: str, work: Callable[[str], str],
                             no_generate: List[str]) -> List[Case]:
    """Oversized, 16-bit, EXIF-rotated and all-ignore data, symlink loops, broken configs,
    mistyped settings and export sizes (docs/datasets.md, "Limits of the loaders")."""
    from hostile_data import add_symlink_loop, write_16bit_label, write_exif_jpeg, write_png_bomb

    from mmaffseg.datasets.synthetic_cityscapes import MARKER

    def dataset(name: str, kind: str, write: Callable[[str], None]) -> str:
        dst = copy_dataset(root, osp.join(w, 'data_' + name))
        for path in split_files(dst, 'train', kind):
            write(path)
        return dst

    def folder(dst: str, kind: str) -> str:
        return osp.join(dst, 'leftImg8bit' if kind == 'img' else 'gtFine', 'train')

    def train(name: str, dst: str, *options: str, iters: int = 1) -> list:
        return train_argv(work(name), dst, iters, options=no_generate + list(options))

    def all_ignore(path: str) -> None:
        cv2.imwrite(path, np.full_like(cv2.imread(path, cv2.IMREAD_UNCHANGED), 255))

    def as_jpeg(orientation: int) -> Callable[[str], None]:
        def write(path: str) -> None:
            rgb = cv2.imread(path)[..., ::-1]
            os.remove(path)
            write_exif_jpeg(path[:-len('.png')] + '.jpg', rgb, orientation)
        return write

    bomb_file = write_png_bomb(osp.join(w, 'bomb.png'), 30000, 30000, level=9)  # 875 KB
    bomb = dataset('bomb', 'img', lambda p: shutil.copyfile(bomb_file, p))
    deep = dataset('16bit', 'ann', lambda p: write_16bit_label(
        p, cv2.imread(p, cv2.IMREAD_UNCHANGED).astype(np.uint16) + 256))
    exif6 = dataset('exif6', 'img', as_jpeg(6))
    jpeg_suffix = ['train_dataloader.dataset.img_suffix=_leftImg8bit.jpg']
    exif3 = write_exif_jpeg(osp.join(w, 'exif3.jpg'),
                            cv2.imread(split_files(root, 'train', 'img')[0])[..., ::-1], 3)
    void = dataset('void', 'ann', all_ignore)
    one_void = copy_dataset(root, osp.join(w, 'data_one_void'))
    void_file = split_files(one_void, 'train', 'ann')[0]
    all_ignore(void_file)
    looped = copy_dataset(root, osp.join(w, 'data_looped'))
    link = add_symlink_loop(osp.dirname(split_files(looped, 'train', 'img')[0]))
    up_looped = copy_dataset(root, osp.join(w, 'data_up_looped'))
    up_link = osp.join(osp.dirname(split_files(up_looped, 'train', 'img')[0]), 'up')
    os.symlink('..', up_link)
    missing_base = osp.join(w, 'missing_base.py')
    open(missing_base, 'w').write("_base_ = ['./no_such_base.py']\n")
    syntax = osp.join(w, 'syntax_error.py')
    open(syntax, 'w').write('a = 1\nmodel = dict(type="X",\nb = 2\n')
    spaced = osp.join(w, 'with space', 'synthetic')  # generated there by the dataset
    loader_check = (  # the loader the tools use, on the stored pixels or rotated?
        'import cv2, numpy as np\nimport mmaffseg\nfrom mmseg.registry import TRANSFORMS\n'
        f'path = {exif3!r}\n'
        'load = TRANSFORMS.build(dict(type="LoadCheckedImageFromFile"))\n'
        'img = load(dict(img_path=path))["img"]\n'
        'same = np.array_equal(img, cv2.imread(path, cv2.IMREAD_UNCHANGED))\n'
        'print("decoded: the stored grid" if same else "decoded: rotated by the EXIF tag")\n')
    export = ['tools/deployment/pytorch2onnx.py', QUICKSTART, osp.join(w, 'none.pth')]
    return [
        Case('data', 'train.py 30000x30000 PNG bomb images (875 KB each)',
             train('bomb', bomb), [folder(bomb, 'img'), '900000000 pixels',
                                  'MMAFFSEG_MAX_IMAGE_PIXELS']),
        Case('data', 'train.py 16-bit label maps (stored 256 + k)',
             train('16bit', deep), [folder(deep, 'ann'), '16-bit']),
        Case('data', 'train.py JPEGs with EXIF orientation 6 (stored grid = label grid)',
             train('exif6', exif6, *jpeg_suffix), [], ok=lambda code, out: code == 0),
        Case('data', 'LoadCheckedImageFromFile on a JPEG with EXIF orientation 3',
             ['-c', loader_check], [exif3],
             ok=lambda code, out: 'decoded: the stored grid' in out, api=True),
        Case('data', 'train.py every label map all ignore (255)',
             train('void', void), [folder(void, 'ann'), 'ignore index 255']),
        Case('data', 'train.py one label map all ignore: warned, named',
             train('one_void', one_void, iters=3), [],  # 3 x 2: every training image
             ok=lambda code, out: code == 0 and f'{void_file} holds only the ignore' in out),
        Case('data', 'train.py symlink loop (a -> b -> a) in the train folder',
             train('loop', looped), [link, 'loop of symbolic links']),
        Case('data', 'train.py symlink to a parent folder in the train folder',
             train('up_loop', up_looped), [up_link, 'loop of symbolic links']),
        Case('config', 'train.py missing _base_ file',
             ['tools/train.py', missing_base, '--work-dir', work('missing_base')],
             [osp.join(w, 'no_such_base.py')]),
        Case('config', 'train.py config syntax error',
             ['tools/train.py', syntax, '--work-dir', work('syntax')], [syntax, 'line 2']),
        Case('config', 'train.py negative lr',
             train('neg_lr', root, 'optim_wrapper.optimizer.lr=-0.01'),
             ['optim_wrapper.optimizer.lr']),
        Case('config', 'train.py train_cfg.max_iters=1O (letter O)',
             train('max_iters', root, 'train_cfg.max_iters=1O'), ['train_cfg.max_iters', '1O']),
        Case('config', 'train.py train_dataloader.batchsize=1 (no type)',
             train('batchsize', root, 'train_dataloader.batchsize=1'),
             ['train_dataloader.batchsize', 'batch_size']),
        Case('config', 'train.py randomness.seeds=1 (no type)',
             train('seeds', root, 'randomness.seeds=1'), ['randomness.seeds', 'seed']),
        Case('config', 'train.py crop 64x128 > data_preprocessor.size 32x64',
             train('crop', root, 'model.data_preprocessor.size=[32,64]'),
             ['crop_size', 'model.data_preprocessor.size']),
        Case('config', 'pytorch2onnx --shape 0 0', export + ['--shape', '0', '0'], ['--shape']),
        Case('config', 'pytorch2onnx --shape 64 -8', export + ['--shape', '64', '-8'],
             ['--shape']),
        Case('config', 'train.py --cfg-options data_root with a space (synthetic)',
             train_argv(work('spaced'), spaced, 1), [],
             ok=lambda code, out: code == 0 and osp.isfile(osp.join(spaced, MARKER))),
    ]


# ------------------------------------------------------------------------------ faults


def kill_when(argv: list, ready: Callable[[], bool], timeout: int = TIMEOUT,
              env: Optional[dict] = None) -> bool:
    """Start ``python ARGV``, SIGKILL it once ``ready()``; False if it ended before."""
    proc = subprocess.Popen([sys.executable] + argv, cwd=REPO, env=dict(ENV, **(env or {})),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return False


def children(pid: int) -> List[int]:
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def faults(w: str, root: str, ref_work: str, cam: str, aff: str, ref_pl: str,
           pl_extra: list) -> List[Result]:
    results = []

    def record(name: str, fn: Callable[[], str]) -> None:
        start = time.time()
        try:
            lost = fn()
        except Exception as e:  # an audit never stops at one case
            lost = f'{type(e).__name__}: {e}'
        results.append(Result('fault', name, 'lost' if lost else 'survived', lost,
                              time.time() - start))
        print(f'  [{results[-1].outcome}] {name} ({results[-1].seconds:.0f} s)', flush=True)

    def resume_and_compare(work: str) -> str:
        code, out = run_python(train_argv(work, root, 4, '--resume'))
        if code != 0:
            return f'--resume exit {code}: {out.strip().splitlines()[-1][:160]}'
        if not same_weights(osp.join(work, 'iter_4.pth'), osp.join(ref_work, 'iter_4.pth')):
            return 'resumed run ends on other weights than the uninterrupted one'
        return ''

    def train_kill() -> str:
        work = osp.join(w, 'f_train_kill')
        if not kill_when(train_argv(work, root, 4),
                         lambda: osp.exists(osp.join(work, 'iter_2.pth'))):
            return 'training ended before the kill'
        return resume_and_compare(work)

    def pointer(kind: str) -> Callable[[], str]:
        def fn() -> str:
            work = osp.join(w, f'f_pointer_{kind}')
            shutil.copytree(ref_work, work)
            for i in (3, 4):
                os.remove(osp.join(work, f'iter_{i}.pth'))
            last = osp.join(work, 'last_checkpoint')
            if kind == 'empty last_checkpoint':
                open(last, 'w').close()
            elif kind == 'truncated last_checkpoint':
                text = open(last).read().replace('iter_4', 'iter_2')
                open(last, 'w').write(text[:len(text) // 2])
            else:  # the newest checkpoint half written
                data = open(osp.join(work, 'iter_2.pth'), 'rb').read()
                open(osp.join(work, 'iter_2.pth'), 'wb').write(data[:len(data) // 2])
                open(last, 'w').write(osp.join(work, 'iter_2.pth'))
            return resume_and_compare(work)
        return fn

    def pl_kill() -> str:
        out = osp.join(w, 'f_pl_kill')
        if not kill_when(pl_argv(root, cam, aff, out) + pl_extra,
                         lambda: len([f for f in tree_files(out) if f.startswith('rw' + os.sep)
                                      and f.endswith('.png')]) >= 2):
            return 'the run ended before the kill'
        code, log = run_python(pl_argv(root, cam, aff, out) + pl_extra)
        if code != 0:
            return f'rerun exit {code}: {log.strip().splitlines()[-1][:160]}'
        return same_tree(out, ref_pl)

    def cache_corrupt() -> str:
        out = osp.join(w, 'f_cache')
        shutil.copytree(ref_pl, out, ignore=shutil.ignore_patterns('log'))
        caches = sorted(p for rel, p in tree_files(out).items() if rel.startswith('cams'))
        data = open(caches[0], 'rb').read()
        open(caches[0], 'wb').write(data[:len(data) // 2])
        open(caches[1], 'wb').close()
        flipped = bytearray(open(caches[2], 'rb').read())
        flipped[len(flipped) // 2] ^= 0xFF
        open(caches[2], 'wb').write(bytes(flipped))
        for rel, path in tree_files(out).items():
            if not rel.startswith('cams') and rel != RECORD_NAME:
                os.remove(path)  # every output is remade from the (broken) caches
        code, log = run_python(pl_argv(root, cam, aff, out) + pl_extra)
        if code != 0:
            return f'rerun exit {code}: {log.strip().splitlines()[-1][:160]}'
        return same_tree(out, ref_pl)

    def crf_kill() -> str:
        out = osp.join(w, 'f_crf_kill')
        shutil.copytree(ref_pl, out, ignore=shutil.ignore_patterns('log', 'rw_crf'))
        proc = subprocess.Popen([sys.executable] + pl_argv(root, cam, aff, out) + pl_extra,
                                cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        workers, deadline = [], time.time() + TIMEOUT
        while proc.poll() is None and time.time() < deadline:
            workers = children(proc.pid)
            if len(workers) >= 2:
                time.sleep(0.5)  # let them start working
                break
            time.sleep(0.05)
        if proc.poll() is not None or not workers:
            return 'the run ended before the CRF workers started'
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(5)
        orphans = [pid for pid in workers if alive(pid)]
        for pid in orphans:
            os.kill(pid, signal.SIGKILL)
        if orphans:
            return f'{len(orphans)} CRF worker(s) still alive 5 s after the kill'
        code, log = run_python(pl_argv(root, cam, aff, out) + pl_extra)
        if code != 0:
            return f'rerun exit {code}: {log.strip().splitlines()[-1][:160]}'
        return same_tree(out, ref_pl)

    record('SIGKILL train.py after iter 2, --resume to 4 (== uninterrupted)', train_kill)
    for kind in ('empty last_checkpoint', 'truncated last_checkpoint',
                 'newest iter_N.pth half written'):
        record(f'{kind}, --resume to 4 (== uninterrupted)', pointer(kind))
    record('SIGKILL make_pseudo_labels mid-run, rerun (byte-identical)', pl_kill)
    record('truncated/empty/bit-flipped CAM caches, rerun (byte-identical)', cache_corrupt)
    record('SIGKILL during the CRF stage: no orphan workers, rerun (byte-identical)', crf_kill)
    work_dir_faults(w, root, ref_work, record, resume_and_compare)
    return results


# ------------------------------------------------------------------------------ work dirs
# tools/train.py's and tools/test.py's work-dir integrity: one writer per work dir, resume only on
# the settings it was made with, no non-finite model trained on, saved or tested, SIGTERM and a
# full disk while a checkpoint is written (README, "Reliability"). In-process faults (a stalled
# or failing checkpoint write, a small disk) go through the tests' driver.

HOLD_LOCK = """
import os, sys, time
from mmaffseg.utils.folder_lock import FolderLock
FolderLock(sys.argv[1], '--work-dir').acquire()
parent = os.getppid()
while os.getppid() == parent:  # until the audit ends
    time.sleep(0.5)
"""


def work_dir_cases(w: str, root: str, ref_work: str) -> List[Case]:
    from test_tools.test_train_integrity import _driver
    work = lambda name: osp.join(w, 'runs', name)  # noqa: E731
    busy = work('wd_busy')
    os.makedirs(busy, exist_ok=True)
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, busy], cwd=REPO, env=ENV)
    while not osp.exists(osp.join(busy, '.mmaffseg.lock')) and holder.poll() is None:
        time.sleep(0.1)
    copies = {}
    for name in ('wd_other_settings', 'wd_resume_other'):
        copies[name] = work(name)
        shutil.copytree(ref_work, copies[name])
    good = osp.join(ref_work, 'iter_4.pth')
    data = torch.load(good, map_location='cpu', weights_only=False)
    data['state_dict']['decode_head.conv_seg.weight'][0, 0, 0, 0] = float('nan')
    nan_ckpt = osp.join(w, 'nan_weight.pth')
    torch.save(data, nan_ckpt)
    return [
        Case('work dir', 'train.py into a work dir another run holds',
             train_argv(busy, root, 1), [busy, 'in use', f'pid {holder.pid}']),
        Case('work dir', 'train.py afresh over checkpoints of other settings',
             train_argv(copies['wd_other_settings'], root, 4,
                        options=['optim_wrapper.optimizer.lr=0.01']),
             [copies['wd_other_settings'], 'optim_wrapper.optimizer.lr', '--overwrite']),
        Case('work dir', 'train.py --resume with other settings',
             train_argv(copies['wd_resume_other'], root, 4, '--resume',
                        options=['model.decode_head.dropout_ratio=0.5']),
             [copies['wd_resume_other'], 'dropout_ratio', '--accept-config-change']),
        Case('work dir', 'train.py lr=1e12 (NaN loss from iteration 2)',
             train_argv(work('wd_diverge'), root, 4,
                        options=['optim_wrapper.optimizer.lr=1e12']),
             ['training diverged at iteration', 'non-finite loss', 'last_checkpoint']),
        Case('work dir', 'test.py CKPT with a NaN weight', test_argv(nan_ckpt, root,
                                                                     work('wd_nan_test')),
             [nan_ckpt, 'decode_head.conv_seg.weight', '--allow-nonfinite-weights']),
        Case('work dir', 'train.py with room for no checkpoint (1 MiB free)',
             _driver('small_disk', train_argv(work('wd_small'), root, 2)),
             [work('wd_small'), 'MiB needed for one checkpoint']),
    ]


def work_dir_faults(w: str, root: str, ref_work: str, record: Callable,
                    resume_and_compare: Callable[[str], str]) -> None:
    from test_tools.test_train_integrity import _driver

    def temp_files(work: str) -> list:
        return [n for n in os.listdir(work) if n.endswith('.tmp')]

    def sigterm() -> str:
        work = osp.join(w, 'f_sigterm')
        proc = subprocess.Popen([sys.executable] + _driver('slow_write', train_argv(
            work, root, 4)), cwd=REPO, env=ENV, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        if not any(line.strip() == 'WRITING' for line in proc.stdout):
            return 'the run ended before writing iter_2.pth'
        proc.send_signal(signal.SIGTERM)
        proc.stdout.read()
        proc.wait()
        if temp_files(work):
            return f'left {temp_files(work)}'
        return resume_and_compare(work)

    def swept() -> str:
        work = osp.join(w, 'f_swept')
        shutil.copytree(ref_work, work)
        for i in (3, 4):
            os.remove(osp.join(work, f'iter_{i}.pth'))
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(osp.join(work, 'iter_2.pth'))
        stale = osp.join(work, '.iter_3.pth.k1ll3d_x.tmp')  # what a SIGKILL leaves
        shutil.copyfile(osp.join(ref_work, 'iter_3.pth'), stale)
        os.utime(stale, (time.time() - 3600, ) * 2)
        lost = resume_and_compare(work)
        return lost or (f'left {temp_files(work)}' if temp_files(work) else '')

    def disk_full() -> str:
        work = osp.join(w, 'f_disk_full')
        code, out = run_python(_driver('no_space', train_argv(work, root, 4)))
        lines = [line for line in out.splitlines() if ': error: ' in line]
        if code != 2 or 'Traceback' in out or not lines or 'MiB free' not in lines[0]:
            return f'exit {code}, not one line naming the free space: {out.splitlines()[-1]}'
        if temp_files(work) or osp.exists(osp.join(work, 'iter_2.pth')):
            return 'a partial iter_2.pth was left'
        return resume_and_compare(work)

    record('SIGTERM while iter_2.pth is written: no temporary file, --resume to 4 '
           '(== uninterrupted)', sigterm)
    record('a SIGKILLed write\'s temporary file: swept by --resume to 4 (== uninterrupted)',
           swept)
    record('disk full while iter_2.pth is written: one line, --resume to 4 (== uninterrupted)',
           disk_full)


# ------------------------------------------------------------------ provenance and locks
# Reruns into an output folder made from other inputs, and two runs into one folder: each must
# stop before any work (exit 2) naming the folder and the stage or the holder, never mix.

HOLD = ('import sys, time\nfrom mmaffseg.utils.folder_lock import FolderLock\n'
        'FolderLock(sys.argv[1], "--out").acquire()\nprint("held", flush=True)\n'
        'time.sleep(3600)\n')


def hold_folder(folder: str) -> subprocess.Popen:
    """A process holding ``folder``'s lock until it is killed."""
    proc = subprocess.Popen([sys.executable, '-c', HOLD, folder], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'held'
    return proc


def killed_after_two_images(ref_pl: str, out: str) -> str:
    """A copy of a finished pseudo-label folder as a run killed after two images leaves it."""
    shutil.copytree(ref_pl, out, ignore=shutil.ignore_patterns('log', 'table1.md',
                                                              'metrics.json'))
    stems = sorted({osp.basename(rel).split('_gtFine')[0] for rel in tree_files(out)
                    if rel.startswith('cam' + os.sep)})
    for rel, path in tree_files(out).items():
        if rel != RECORD_NAME and not osp.basename(path).startswith(tuple(stems[:2])):
            os.remove(path)
    return out


def provenance_cases(w: str, root: str, cam: str, aff: str, ref_pl: str, pl_extra: list,
                     holders: list) -> List[Case]:
    """The reruns and concurrent runs; ``holders`` gets the lock-holding processes (kill
    them after the cases ran)."""
    other_cam = other_weights(cam, osp.join(w, 'cam_other.pth'))
    copy = lambda name: shutil.copytree(  # noqa: E731
        ref_pl, osp.join(w, name), ignore=shutil.ignore_patterns('log'))
    new_cam, killed = copy('pv_newcam'), killed_after_two_images(ref_pl, osp.join(w, 'pv_kill'))
    sel, busy = copy('pv_select'), copy('pv_busy')
    options = pl_argv(root, cam, None, sel)  # the tiny dataset's --cfg-options
    holders.append(hold_folder(busy))
    suite_busy = osp.join(w, 'pv_suite_busy')
    holders.append(hold_folder(suite_busy))
    foreign = osp.join(w, 'pv_suite_foreign', 'deeplabv3plus', 'seed0')
    os.makedirs(foreign)
    open(osp.join(foreign, 'notes.txt'), 'w').write('not a run of the suite')
    suite = ['tools/benchmark_suite.py', 'synthetic', '--tiny', '--data-root', root, '--seeds',
             '0', '--methods', 'deeplabv3plus', '--work-dir']
    return [
        Case('provenance', 'make_pseudo_labels rerun with another --cam-checkpoint (cams/ kept)',
             pl_argv(root, other_cam, aff, new_cam) + pl_extra,
             [new_cam, "stage 'cams'", 'cam_checkpoint', '--overwrite']),
        Case('provenance', 'make_pseudo_labels killed, rerun with other rw_beta / cam_bg_score',
             pl_argv(root, cam, aff, killed) + pl_extra +
             ['test_cfg.rw_beta=2', 'test_cfg.cam_bg_score=0.05'],
             [killed, "stage 'cam'", 'cam_bg_score', "stage 'rw'", 'rw_beta']),
        Case('provenance', 'make_pseudo_labels into a folder another run writes',
             pl_argv(root, cam, aff, busy) + pl_extra, [busy, f'pid {holders[0].pid}']),
        Case('provenance', 'select_psa_params with another --cam-checkpoint (cams/ kept)',
             ['tools/select_psa_params.py', PL_CFG, '--sweep', 'affinity', '--cam-checkpoint',
              other_cam, '--out', sel, '--work-dir', osp.join(w, 'runs', 'pv_select')] +
             options[options.index('--cfg-options'):] + pl_extra,
             [sel, "stage 'cams'", '--overwrite']),
        Case('provenance', 'benchmark_suite into a --work-dir another suite writes',
             suite + [suite_busy], [suite_busy, f'pid {holders[1].pid}']),
        Case('provenance', 'benchmark_suite --work-dir with a foreign folder as a run',
             suite + [osp.dirname(osp.dirname(foreign))],
             ["stage 'deeplabv3plus/seed0'", 'no provenance record', '--overwrite']),
    ]


def provenance_faults(w: str, root: str, cam: str, aff: str, ref_pl: str,
                      pl_extra: list) -> List[Result]:
    """--overwrite after a new CAM checkpoint gives the files of a clean run with it."""
    start = time.time()
    other_cam = other_weights(cam, osp.join(w, 'cam_other2.pth'), seed=2)
    out, clean = osp.join(w, 'pv_overwrite'), osp.join(w, 'pv_overwrite_clean')
    shutil.copytree(ref_pl, out, ignore=shutil.ignore_patterns('log'))
    lost = ''
    for argv in (pl_argv(root, other_cam, aff, out, '--overwrite') + pl_extra,
                 pl_argv(root, other_cam, aff, clean) + pl_extra):
        code, log = run_python(argv)
        if code != 0:
            lost = f'exit {code}: {log.strip().splitlines()[-1][:160]}'
            break
    lost = lost or same_tree(out, clean)
    result = Result('fault', '--overwrite after a new CAM checkpoint (== a clean run with it)',
                    'lost' if lost else 'survived', lost, time.time() - start)
    print(f'  [{result.outcome}] {result.name} ({result.seconds:.0f} s)', flush=True)
    return [result]


# ------------------------------------------------------------------------------ main


def table(results: List[Result]) -> str:
    rows = ['| category | case | outcome | detail |', '|---|---|---|---|']
    for r in results:
        detail = r.detail.replace('|', '/').replace('\n', ' ')[:150]
        rows.append(f'| {r.category} | {r.name} | {r.outcome} | {detail} |')
    return '\n'.join(rows)


def totals(results: List[Result]) -> str:
    inputs = [r for r in results if r.category != 'fault']
    count = lambda rs, o: sum(r.outcome == o for r in rs)  # noqa: E731
    fault = [r for r in results if r.category == 'fault']
    return (f'bad inputs tried: {len(inputs)} / clear errors: {count(inputs, "clear error")} / '
            f'handled (ok): {count(inputs, "ok")} / unclear errors: '
            f'{count(inputs, "unclear error")} / raw tracebacks: '
            f'{count(inputs, "raw traceback")} / silent results: {count(inputs, "silent")}\n'
            f'faults injected: {len(fault)} / survived: {count(fault, "survived")} / '
            f'lost: {count(fault, "lost")}')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', help='keep the audit files here (default: a temp dir)')
    parser.add_argument('-j', '--jobs', type=int, default=2, help='bad inputs run in parallel')
    parser.add_argument('--only', choices=['inputs', 'faults'], help='run one half')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    start = time.time()
    with contextlib.ExitStack() as stack:
        w = args.work_dir or stack.enter_context(tempfile.TemporaryDirectory())
        w = osp.abspath(w)
        os.makedirs(w, exist_ok=True)
        from conftest import TINY_HW

        from mmaffseg.datasets import generate_synthetic_cityscapes
        root = generate_synthetic_cityscapes(osp.join(w, 'synthetic_cityscapes'), num_train=6,
                                             num_val=3, seed=0, height=TINY_HW[0],
                                             width=TINY_HW[1], verbose=False)
        print('set-up: 4-iteration reference training, PSA checkpoints, reference pseudo '
              'labels', flush=True)
        ref_work = osp.join(w, 'reference_train')
        if not osp.isfile(osp.join(ref_work, 'iter_4.pth')):
            code, out = run_python(train_argv(ref_work, root, 4))
            assert code == 0, out[-3000:]
        cam, aff = make_psa_checkpoints(pathlib.Path(w))
        pl_extra = ['test_cfg.crf.workers=2']  # after pl_argv's --cfg-options
        ref_pl = osp.join(w, 'reference_pl')
        if not osp.isfile(osp.join(ref_pl, 'table1.md')):
            code, out = run_python(pl_argv(root, cam, aff, ref_pl) + pl_extra)
            assert code == 0, out[-3000:]
        results = []
        holders: List[subprocess.Popen] = []  # processes holding folder locks, for the cases
        stack.callback(lambda: [(p.kill(), p.wait()) for p in holders])
        if args.only != 'faults':
            served = osp.join(w, 'served')
            os.makedirs(served, exist_ok=True)
            save_payload(osp.join(served, 'payload.pth'),
                         FilePayload(osp.join(w, 'marker_http')))
            with serve_folder(served) as base:
                cases = bad_input_cases(w, root, osp.join(ref_work, 'iter_4.pth'), cam, aff,
                                        f'{base}/payload.pth')
                cases += provenance_cases(w, root, cam, aff, ref_pl, pl_extra, holders)
                os.makedirs(osp.join(w, 'logs'), exist_ok=True)
                for i, case in enumerate(cases):
                    case.log = osp.join(w, 'logs', f'{i:02d}.txt')
                print(f'{len(cases)} bad inputs, {args.jobs} at a time; outputs in '
                      f'{osp.join(w, "logs")}', flush=True)
                with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                    for r in pool.map(run_case, cases):
                        print(f'  [{r.outcome}] {r.category}: {r.name} ({r.seconds:.0f} s)',
                              flush=True)
                        results.append(r)
        if args.only != 'inputs':
            print('faults', flush=True)
            results += faults(w, root, ref_work, cam, aff, ref_pl, pl_extra)
            results += provenance_faults(w, root, cam, aff, ref_pl, pl_extra)
    print()
    print(table(results))
    print()
    print(totals(results))
    print(f'runtime: {time.time() - start:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
