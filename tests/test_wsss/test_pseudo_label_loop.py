# Copyright (c) mmaffseg contributors. All rights reserved.
"""The PSA pseudo-label runner: end to end on the tiny synthetic data, resume after a crash,
atomic writes, bad inputs, sharding, the tool's exit codes."""
import filecmp
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
from unittest import mock

import cv2
import numpy as np
import pytest
import torch
from helpers import tiny_synthetic_overrides
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS
from PIL import Image
from tool_runner import load_tool

import mmaffseg  # noqa: F401
from mmaffseg.cli import build_runner, load_config
from mmaffseg.cli.pseudo_labels import prepare_pseudo_label_cfg
from mmaffseg.utils import atomic_io
from mmaffseg.wsss import pseudo_label_loop
from mmaffseg.wsss.pseudo_label_loop import PseudoLabelLoop, label_relpath, shard_indices

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs', 'psa')
PL_CFG = osp.join(CFG_DIR, 'psa-pseudo-labels_r18-d8-slim_quickstart_synthetic-wsss-128x256.py')
AFF_CFG = osp.join(CFG_DIR, 'psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-128x256.py')
ALL_STAGES = ['cam', 'affinity_labels', 'rw', 'rw_crf']


def _options(root: str, **extra) -> dict:
    opts = tiny_synthetic_overrides(root)
    opts.update({
        'test_dataloader.dataset.indices': None,  # all 6 training images
        'test_cfg.crf.workers': 0,
        'test_cfg.cam_scales': [1.0, 0.5],
        'test_cfg.num_threads': 1,  # spinning OpenMP threads crawl on a busy CI machine
        'test_cfg.rw_logt': 4,
    })
    opts.update(extra)
    return opts


def make_psa_checkpoints(folder) -> list:
    """Save a randomly initialised (seed 0) CAM classifier and AffinityNet of the demo configs
    in ``folder``; returns their paths (also used by tests/hostile_input_audit.py)."""
    init_default_scope('mmseg')
    paths = []
    torch.manual_seed(0)
    for name, cfg in (('cam', load_config(PL_CFG).model), ('aff', load_config(AFF_CFG).model)):
        model = MODELS.build(cfg)
        model.init_weights()
        path = str(folder / f'{name}.pth')
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
        paths.append(path)
    return paths


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Randomly initialised CAM classifier and AffinityNet of the demo configs."""
    return make_psa_checkpoints(tmp_path_factory.mktemp('psa_ckpt'))


def _runner(root, checkpoints, out, stages=ALL_STAGES, **extra):
    cfg = load_config(PL_CFG, _options(root, **extra))
    prepare_pseudo_label_cfg(cfg, PL_CFG, checkpoints[0], checkpoints[1], str(out), stages,
                             work_dir=str(osp.join(out, 'log')))
    return build_runner(cfg)


def _outputs(out) -> dict:
    found = {}
    for folder in ('cams', ) + tuple(ALL_STAGES):
        for dirpath, _, files in os.walk(osp.join(out, folder)):
            for f in files:
                found[osp.relpath(osp.join(dirpath, f), out)] = osp.join(dirpath, f)
    return found


@pytest.fixture(scope='module')
def reference(tiny_synthetic_root, checkpoints, tmp_path_factory):
    """One uninterrupted run of all stages; returns (out_dir, metrics, loop)."""
    out = tmp_path_factory.mktemp('psa_ref')
    runner = _runner(tiny_synthetic_root, checkpoints, out)
    metrics = runner.test()
    return str(out), metrics, runner.test_loop


def test_end_to_end_outputs(reference, tiny_synthetic_root):
    out, metrics, loop = reference
    assert loop.failures == [] and len(loop.processed) == 6 and loop.skipped == []
    files = _outputs(out)
    for stage in ALL_STAGES:
        pngs = sorted(f for f in files if f.startswith(stage + os.sep))
        assert len(pngs) == 6, stage
    ds = loop.dataloader.dataset
    for index in range(len(ds)):
        info = ds.get_data_info(index)
        rel = label_relpath(info['img_path'], ds.data_prefix['img_path'], ds.img_suffix,
                            ds.seg_map_suffix)
        # mmseg seg-map layout: <city>/<stem>_gtFine_labelTrainIds.png
        assert rel == osp.relpath(info['seg_map_path'], ds.data_prefix['seg_map_path'])
        present = set(np.flatnonzero(ds[index]['data_samples'].gt_class_labels) + 1)
        with np.load(osp.join(out, 'cams', rel[:-4] + '.npz')) as f:
            assert (set(f['class_ids'] + 1) == present and f['cams'].dtype == np.float16
                    and f['cams'].shape[1:] == (64, 128))
        for stage in ALL_STAGES:
            label = cv2.imread(osp.join(out, stage, rel), cv2.IMREAD_UNCHANGED)
            assert label.shape == (64, 128) and label.dtype == np.uint8
            allowed = {0} | present | ({255} if stage == 'affinity_labels' else set())
            assert set(np.unique(label)) <= allowed, stage
    # Table 1 rows, consistent with the written files
    assert set(metrics) == {'pseudo_label/CAM', 'pseudo_label/CAM + RW',
                            'pseudo_label/CAM + RW + dCRF', 'pseudo_label/num_images'}
    with open(osp.join(out, 'metrics.json')) as f:
        assert json.load(f)['CAM + RW'] == metrics['pseudo_label/CAM + RW']
    assert '| CAM + RW + dCRF |' in open(osp.join(out, 'table1.md')).read()
    assert not osp.exists(osp.join(out, 'failures.txt'))


def _naive_label(index: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Stack index -> label: 0 background, class_ids[i - 1] + 1 for stack channel i."""
    return np.where(index == 0, 0, np.concatenate([[0], class_ids + 1])[index])


def test_outputs_recomputed_from_the_cached_cams(reference, tiny_synthetic_root, checkpoints):
    """Every output PNG equals its recomputation from the cached CAMs with the library
    functions and the config's settings (alphas, beta, t, radius, stride, bg score, CRF), the
    class-id map written out naively, and the RGB image read here; the cached CAMs equal a
    fresh multi-scale CAM pass whose scales are resized as the reference does (PIL bicubic on
    the uint8 image, then normalised)."""
    from mmaffseg.postprocessing import DenseCRF
    from mmaffseg.utils import load_checkpoint_file
    from mmaffseg.wsss import add_background, multi_scale_cam, random_walk_cams
    out, _, loop = reference
    cfg = load_config(PL_CFG, _options(tiny_synthetic_root))
    settings = cfg.test_cfg
    init_default_scope('mmseg')
    models = []
    for model_cfg, path in ((cfg.model, checkpoints[0]), (load_config(AFF_CFG).model,
                                                           checkpoints[1])):
        model = MODELS.build(model_cfg)
        model.load_state_dict(load_checkpoint_file(path)['state_dict'])
        models.append(model.eval())
    cam_model, aff_model = models
    prep = cfg.model.data_preprocessor
    mean = torch.tensor(prep.mean).view(3, 1, 1)
    std = torch.tensor(prep.std).view(3, 1, 1)
    crf = DenseCRF(**{k: v for k, v in settings.crf.items() if k != 'workers'})
    head = aff_model.decode_head
    assert (head.radius, head.label_stride) == (5, 4)  # the demo AffinityNet
    ds = loop.dataloader.dataset
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for index in range(len(ds)):
            info = ds.get_data_info(index)
            rel = label_relpath(info['img_path'], ds.data_prefix['img_path'], ds.img_suffix,
                                ds.seg_map_suffix)
            with np.load(osp.join(out, 'cams', rel[:-4] + '.npz')) as f:
                cams, class_ids = torch.from_numpy(f['cams']).float(), f['class_ids']
            written = {s: cv2.imread(osp.join(out, s, rel), cv2.IMREAD_UNCHANGED)
                       for s in ALL_STAGES}
            rgb = np.ascontiguousarray(cv2.imread(info['img_path'], cv2.IMREAD_COLOR)[..., ::-1])
            def normalised(array):
                return ((torch.from_numpy(array.copy()).permute(2, 0, 1).float() - mean) /
                        std)[None]

            def pil_scaled(size, image=Image.fromarray(rgb)):  # the reference's PIL bicubic
                return normalised(np.asarray(image.resize((size[1], size[0]), Image.BICUBIC)))

            x = normalised(rgb)
            with torch.no_grad():
                labels = torch.as_tensor(ds[index]['data_samples'].gt_class_labels)
                fresh, fresh_ids = multi_scale_cam(cam_model.forward_cam, x, labels,
                                                   settings.cam_scales, settings.cam_flip,
                                                   scaled_input=pil_scaled)
                aff = aff_model.predict_affinity(x)
            np.testing.assert_array_equal(fresh_ids.numpy(), class_ids)
            torch.testing.assert_close(fresh.half().float(), cams, rtol=0, atol=2e-3)
            # CAM: argmax of [bg_score, CAMs]
            stack = torch.cat([torch.full_like(cams[:1], settings.cam_bg_score), cams])
            np.testing.assert_array_equal(written['cam'],
                                          _naive_label(stack.argmax(0).numpy(), class_ids))
            # affinity labels: low-alpha CRF classes, its background unknown, high-alpha
            # CRF background confident
            low, high = (crf(add_background(cams, a).numpy(), rgb).argmax(0)
                         for a in (settings.low_alpha, settings.high_alpha))
            expected = _naive_label(low, class_ids)
            expected[low == 0] = 255
            expected[high == 0] = 0
            np.testing.assert_array_equal(written['affinity_labels'], expected)
            # CAM + RW, then the dCRF on the walked scores normalised over the classes
            scores = random_walk_cams(cams[None], aff, alpha=settings.rw_alpha,
                                      beta=settings.rw_beta, logt=settings.rw_logt,
                                      radius=head.radius, stride=head.label_stride)[0]
            np.testing.assert_array_equal(written['rw'],
                                          _naive_label(scores.argmax(0).numpy(), class_ids))
            probs = scores / scores.sum(0, keepdim=True).clamp_min(1e-5)
            np.testing.assert_array_equal(
                written['rw_crf'], _naive_label(crf(probs.numpy(), rgb).argmax(0), class_ids))
    finally:
        torch.set_num_threads(threads)


def test_second_stage_config_reads_pseudo_labels(reference, tiny_synthetic_root):
    """The rw_crf folder is a seg_map_path for the second-stage config as it is."""
    out = reference[0]
    cfg = load_config(osp.join(CFG_DIR, 'deeplabv2_r18-d8_quickstart_synthetic-wsss-psa-pseudo'
                               '-128x256.py'), tiny_synthetic_overrides(tiny_synthetic_root))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_prefix.seg_map_path = osp.join(out, 'rw_crf')
    ds_cfg.pipeline = ds_cfg.pipeline[:2] + ds_cfg.pipeline[-1:]  # load + pack only
    ds_cfg.indices = None
    init_default_scope('mmseg')
    ds = DATASETS.build(ds_cfg)
    assert len(ds) == 6
    sample = ds[0]['data_samples']
    expected = cv2.imread(sample.seg_map_path, cv2.IMREAD_UNCHANGED)
    assert sample.seg_map_path.startswith(osp.join(out, 'rw_crf'))
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), expected)


def test_resume_after_crash_is_identical(reference, tiny_synthetic_root, checkpoints, tmp_path):
    ref_out = reference[0]
    calls = []
    original = PseudoLabelLoop._crf_pass

    def crash_on_third(self, image, refined):
        calls.append(image.index)
        if len(calls) == 3:
            raise KeyboardInterrupt('simulated crash')
        return original(self, image, refined)

    with mock.patch.object(PseudoLabelLoop, '_crf_pass', crash_on_third):
        with pytest.raises(KeyboardInterrupt):
            _runner(tiny_synthetic_root, checkpoints, tmp_path).test()
    partial = _outputs(tmp_path)
    assert 0 < len(partial) < len(_outputs(ref_out))
    # a write killed half way leaves only a temporary file behind
    victim = osp.join(tmp_path, 'rw_crf', sorted(f for f in _outputs(ref_out)
                                                 if f.startswith('rw_crf'))[-1][7:])
    os.makedirs(osp.dirname(victim), exist_ok=True)
    with open(osp.join(osp.dirname(victim), f'.{osp.basename(victim)}.x1y2.tmp'), 'wb') as f:
        f.write(b'\x89PNG half')
    runner = _runner(tiny_synthetic_root, checkpoints, tmp_path)
    runner.test()
    loop = runner.test_loop
    assert loop.failures == [] and len(loop.skipped) == 2 and len(loop.processed) == 4
    resumed, expected = _outputs(tmp_path), _outputs(ref_out)
    assert set(resumed) == set(expected)
    for rel in expected:
        assert filecmp.cmp(resumed[rel], expected[rel], shallow=False), rel
    assert atomic_io.stale_temp_files(victim) == []


def test_atomic_write_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'sub' / 'label.png')
    atomic_io.atomic_write_bytes(path, b'old content')

    def interrupted(f, data):
        f.write(data[:3])
        f.flush()
        raise OSError('disk full')

    monkeypatch.setattr(atomic_io, '_write_all', interrupted)
    with pytest.raises(OSError, match='disk full'):
        atomic_io.atomic_write_bytes(path, b'new content')
    assert open(path, 'rb').read() == b'old content'  # untouched
    assert os.listdir(tmp_path / 'sub') == ['label.png']  # the temporary file is gone
    monkeypatch.undo()
    # a process killed in the middle of a write: no destination file, one stale temp file
    fresh = str(tmp_path / 'killed.png')
    code = ('import importlib.util, os, signal\n'  # the module alone (stdlib only): fast
            'spec = importlib.util.spec_from_file_location(\n'
            f'    "atomic_io", {atomic_io.__file__!r})\n'
            'atomic_io = importlib.util.module_from_spec(spec)\n'
            'spec.loader.exec_module(atomic_io)\n'
            'def die(f, data):\n'
            '    f.write(data[:5]); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n'
            'atomic_io._write_all = die\n'
            f'atomic_io.atomic_write_bytes({fresh!r}, b"0123456789")\n')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, timeout=120)
    assert proc.returncode == -9
    assert not osp.exists(fresh) and len(atomic_io.stale_temp_files(fresh)) == 1
    atomic_io.remove_stale_temp_files(fresh)
    assert os.listdir(tmp_path) == ['sub']


def test_bad_inputs_are_listed_and_the_run_goes_on(tiny_synthetic_root, checkpoints, tmp_path,
                                                   monkeypatch, capsys):
    root = str(tmp_path / 'data')
    shutil.copytree(tiny_synthetic_root, root)
    images = sorted(osp.join(d, f) for d, _, fs in os.walk(osp.join(root, 'leftImg8bit', 'train'))
                    for f in fs)
    with open(images[1], 'wb') as f:
        f.write(b'not an image')
    names = [osp.splitext(osp.basename(p))[0] for p in images]
    label_file = tmp_path / 'labels.json'  # images[3] has no entry, images[4] an empty one
    label_file.write_text(json.dumps({n: [2] for n in names[:3] + names[5:]} | {names[4]: []}))
    out = tmp_path / 'out'
    argv = ['make_pseudo_labels.py', PL_CFG, '--cam-checkpoint', checkpoints[0],
            '--aff-checkpoint', checkpoints[1], '--out', str(out), '--no-crf',
            '--work-dir', str(tmp_path / 'log'), '--cfg-options']
    opts = _options(root, **{'test_dataloader.dataset.pipeline.2.label_file': str(label_file)})
    argv += [f'{k}={v}' for k, v in opts.items() if not isinstance(v, list)]
    argv += ['test_dataloader.dataset.image_size=[64,128]', 'test_cfg.cam_scales=[1.0]']
    tool = _load_tool()
    monkeypatch.setattr(sys, 'argv', argv)
    assert tool.main() == 1
    failures = open(out / 'failures.txt').read().splitlines()
    assert [line.split('\t')[0] for line in failures] == [images[1], images[3], images[4]]
    assert 'failed to load image' in failures[0]
    assert 'has no image-level labels' in failures[1]
    assert 'all zero' in failures[2]
    done = sorted(f for f in _outputs(str(out)) if f.startswith('rw' + os.sep))
    assert len(done) == 3  # the good images are finished
    assert 'rw_crf' not in os.listdir(out)  # --no-crf


def test_missing_checkpoints(tiny_synthetic_root, checkpoints, tmp_path, monkeypatch, capsys):
    tool = _load_tool()
    base = ['make_pseudo_labels.py', PL_CFG, '--out', str(tmp_path)]
    monkeypatch.setattr(sys, 'argv', base + ['--cam-checkpoint', str(tmp_path / 'no.pth')])
    assert tool.main() == 2
    assert "--cam-checkpoint '" in capsys.readouterr().err
    monkeypatch.setattr(sys, 'argv', base + ['--cam-checkpoint', checkpoints[0]])
    assert tool.main() == 2
    assert 'needs --aff-checkpoint' in capsys.readouterr().err
    # the loop checks too when built from a config directly
    cfg = load_config(PL_CFG, _options(tiny_synthetic_root))
    cfg.test_cfg.update(cam_checkpoint=checkpoints[0], aff_checkpoint='/nowhere/aff.pth',
                        out_dir=str(tmp_path))
    cfg.work_dir = str(tmp_path / 'log')
    with pytest.raises(FileNotFoundError, match="AffinityNet, but its checkpoint '/nowhere"):
        build_runner(cfg).test()


def test_shard_indices_cover_every_image_once():
    for n in (0, 1, 5, 7):
        for world_size in (1, 2, 3):
            shards = [shard_indices(n, r, world_size) for r in range(world_size)]
            assert sorted(sum(shards, [])) == list(range(n))
            assert max(map(len, shards)) - min(map(len, shards)) <= 1
    with pytest.raises(ValueError, match='rank < world_size'):
        shard_indices(4, 2, 2)


def test_sharded_runs_cover_the_dataset(tiny_synthetic_root, checkpoints, tmp_path):
    runner = _runner(tiny_synthetic_root, checkpoints, tmp_path / 'w1', stages=['cam'])
    runner.test()
    loop = runner.test_loop
    assert sorted(loop.processed) == list(range(6))
    for world_size in (2, 3):
        seen = []
        for rank in range(world_size):
            loop.out_dir = str(tmp_path / f'w{world_size}')
            with mock.patch.object(pseudo_label_loop, 'get_dist_info',
                                   return_value=(rank, world_size)):
                loop.run()
            assert loop.skipped == []
            seen += loop.processed
        assert sorted(seen) == list(range(6))  # every image exactly once
        assert sorted(_outputs(loop.out_dir)) == sorted(_outputs(tmp_path / 'w1'))


def test_label_relpath():
    assert label_relpath('/voc/JPEGImages/2007_000032.jpg', '/voc/JPEGImages', '.jpg',
                         '.png') == '2007_000032.png'
    assert label_relpath('/c/leftImg8bit/train/ulm/ulm_1_leftImg8bit.png', '/c/leftImg8bit/train',
                         '_leftImg8bit.png', '_gtFine_labelTrainIds.png') == osp.join(
                             'ulm', 'ulm_1_gtFine_labelTrainIds.png')
    assert label_relpath('/else/a.jpg', '/voc/JPEGImages', '.png') == 'a.png'


def _load_tool():
    return load_tool('make_pseudo_labels.py')


def test_unreadable_checkpoint_is_named_and_exits_2(checkpoints, tmp_path, monkeypatch, capsys):
    truncated = str(tmp_path / 'truncated.pth')
    with open(checkpoints[1], 'rb') as f:
        data = f.read()
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    monkeypatch.setattr(sys, 'argv', [
        'make_pseudo_labels.py', PL_CFG, '--out', str(tmp_path / 'out'), '--cam-checkpoint',
        checkpoints[0], '--aff-checkpoint', truncated, '--work-dir', str(tmp_path / 'log')])
    with pytest.raises(SystemExit) as info:
        _load_tool().main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f'error: --aff-checkpoint: checkpoint {truncated} is not a readable' in err, err


def test_missing_checkpoint_reaches_torchruns_error_file(tmp_path, monkeypatch, capsys):
    """Under torchrun the tool's one-line error is also the launcher's root cause."""
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure
    error_file = tmp_path / 'error.json'
    monkeypatch.setenv('TORCHELASTIC_ERROR_FILE', str(error_file))
    monkeypatch.setattr(sys, 'argv', ['make_pseudo_labels.py', PL_CFG, '--out', str(tmp_path),
                                      '--cam-checkpoint', str(tmp_path / 'no.pth')])
    assert _load_tool().main() == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("make_pseudo_labels.py: error: ") and "--cam-checkpoint '" in err
    failure = ProcessFailure(local_rank=0, pid=1, exitcode=2, error_file=str(error_file))
    assert failure.message['extraInfo']['py_callstack'] == err
