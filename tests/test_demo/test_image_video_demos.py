# Copyright (c) mmaffseg contributors. All rights reserved.
"""demo/image_demo.py and demo/video_demo.py run as users run them, on the quick-start config
shrunk to 64x128 at random weights; the painted image and video are read back.

The bad-input cases call the demos' ``main`` in-process (seconds instead of a subprocess each).
"""
import os.path as osp
import sys

import cv2
import mmcv
import numpy as np
import pytest
import torch
from tool_runner import load_tool, run_tool
from untrained import QUICKSTARTS, save_untrained, small_test_config

from mmaffseg.datasets import StreetSceneGenerator

pytestmark = pytest.mark.usefixtures('one_thread')

#: the test images and clips: not the network's input size, so both resizes are exercised
HW = (96, 160)


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    """(config file, untrained checkpoint) of the DeepLabV3+ quick-start at 64x128."""
    folder = tmp_path_factory.mktemp('model')
    cfg = small_test_config(QUICKSTARTS['deeplabv3plus'])
    config = str(folder / 'deeplabv3plus_small.py')
    cfg.dump(config)
    return config, save_untrained(cfg, str(folder / 'untrained.pth'))


def _scene(index: int) -> np.ndarray:
    """Synthetic street scene ``index`` (BGR, ``HW``)."""
    return mmcv.rgb2bgr(StreetSceneGenerator(*HW).render(seed=0, index=index).image)


def _write_clip(path: str, frames: int, fps: float = 5.0) -> str:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), fps, HW[::-1], True)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(_scene(i))
    writer.release()
    return path


def _read_video(path: str):
    """(frames, fps) of a video file, read with OpenCV."""
    cap = cv2.VideoCapture(path)
    assert cap.isOpened(), path
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps


def _error_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.slow
def test_image_demo_paints_the_prediction_at_the_image_size(model_files, tmp_path):
    from mmseg.apis import inference_model

    from mmaffseg.apis import init_model
    config, checkpoint = model_files
    image = str(tmp_path / 'street.png')
    mmcv.imwrite(_scene(0), image)
    out = str(tmp_path / 'out' / 'painted.png')  # the folder is created
    run_tool(['demo/image_demo.py', image, config, checkpoint, '--out-file', out, '--device',
              'cpu', '--opacity', '1'])
    painted = mmcv.imread(out, channel_order='rgb')
    assert painted.shape == HW + (3, )

    # opacity 1: the picture is the prediction in the palette of the checkpoint's classes
    model = init_model(config, checkpoint, device='cpu')
    pred = inference_model(model, image).pred_sem_seg.data[0].numpy()
    palette = np.array(model.dataset_meta['palette'], dtype=np.uint8)
    colours = {tuple(c) for c in palette}
    assert {tuple(c) for c in painted.reshape(-1, 3)} <= colours
    # (the subprocess may use other threads: a near-tie of the random logits may flip a pixel)
    assert (painted == palette[pred]).all(-1).mean() > 0.99


@pytest.mark.slow
@pytest.mark.parametrize('options, hw, fps', [
    ([], HW, 5.0),
    (['--output-height', '48', '--output-width', '80', '--output-fps', '2'], (48, 80), 2.0),
])
def test_video_demo_writes_every_frame(model_files, tmp_path, options, hw, fps):
    config, checkpoint = model_files
    clip = _write_clip(str(tmp_path / 'clip.avi'), frames=4)
    out = str(tmp_path / 'out' / 'painted.avi')
    log = run_tool(['demo/video_demo.py', clip, config, checkpoint, '--output-file', out,
                    '--device', 'cpu', '--opacity', '1'] + options)
    assert 'painted 4 frame(s)' in log
    frames, out_fps = _read_video(out)
    assert len(frames) == 4
    assert all(f.shape == hw + (3, ) for f in frames)
    assert out_fps == pytest.approx(fps)
    # painted at opacity 1: the frames are label colours, not the input
    inputs, _ = _read_video(clip)
    for painted, frame in zip(frames, inputs):
        frame = cv2.resize(frame, hw[::-1])
        assert np.abs(painted.astype(int) - frame.astype(int)).mean() > 10


@pytest.fixture(scope='module')
def image_demo():
    return load_tool('image_demo.py', folder='demo')


@pytest.fixture(scope='module')
def video_demo():
    return load_tool('video_demo.py', folder='demo')


def test_image_demo_names_missing_and_unreadable_inputs(image_demo, model_files, tmp_path,
                                                        capsys):
    config, checkpoint = model_files
    image = str(tmp_path / 'street.png')
    mmcv.imwrite(_scene(0), image)
    empty = tmp_path / 'empty.png'
    empty.write_bytes(b'')
    out = ['--out-file', str(tmp_path / 'painted.png'), '--device', 'cpu']
    cases = [
        ([str(tmp_path / 'nope.png'), config, checkpoint], 'IMG: image file', 'does not exist'),
        ([str(empty), config, checkpoint], 'IMG:', 'not an image file OpenCV can read'),
        ([config, config, checkpoint], 'IMG:', 'not an image file OpenCV can read'),
        ([image, str(tmp_path / 'nope.py'), checkpoint], 'CONFIG:', 'does not exist'),
        ([image, config, str(tmp_path / 'nope.pth')], 'CHECKPOINT:', 'does not exist'),
        ([image, config, checkpoint, '--opacity', '0'], '--opacity:', 'in (0, 1]'),
    ]
    for args, argument, what in cases:
        with pytest.raises(SystemExit) as exit_info:
            image_demo.main(args + out)
        assert exit_info.value.code == 2, args
        line = _error_line(capsys)
        assert argument in line and what in line, (args, line)
    assert not osp.exists(out[1])


def test_image_demo_refuses_a_checkpoint_of_another_model(image_demo, model_files, tmp_path,
                                                          capsys):
    config, _ = model_files
    image = str(tmp_path / 'street.png')
    mmcv.imwrite(_scene(0), image)
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'head.weight': torch.zeros(2, 3)}}, other)
    with pytest.raises(SystemExit) as exit_info:
        image_demo.main([image, config, other, '--out-file', str(tmp_path / 'p.png'),
                         '--device', 'cpu'])
    assert exit_info.value.code == 2
    line = _error_line(capsys)
    assert 'CHECKPOINT:' in line and 'does not fit' in line and '--non-strict' in line, line


def test_video_demo_names_bad_inputs_and_outputs(video_demo, model_files, tmp_path, capsys):
    config, checkpoint = model_files
    clip = _write_clip(str(tmp_path / 'clip.avi'), frames=1)
    not_video = tmp_path / 'notes.txt'
    not_video.write_text('not a video\n')
    out = str(tmp_path / 'painted.avi')
    cases = [
        ([str(tmp_path / 'nope.avi'), config, checkpoint, '--output-file', out],
         'VIDEO: video file', 'does not exist'),
        ([str(not_video), config, checkpoint, '--output-file', out], 'VIDEO:',
         'OpenCV cannot open'),
        ([clip, config, checkpoint], 'no output:', '--output-file'),
        ([clip, config, checkpoint, '--output-file', out, '--output-fourcc', 'MJ'],
         '--output-fourcc:', '4 characters'),
        ([clip, config, checkpoint, '--output-file', str(tmp_path / 'painted.unknown')],
         '--output-file:', 'OpenCV cannot write'),
        ([clip, config, str(tmp_path / 'nope.pth'), '--output-file', out], 'CHECKPOINT:',
         'does not exist'),
    ]
    for args, argument, what in cases:
        with pytest.raises(SystemExit) as exit_info:
            video_demo.main(args + ['--device', 'cpu'])
        assert exit_info.value.code == 2, args
        line = _error_line(capsys)
        assert argument in line and what in line, (args, line)
    assert not osp.exists(out)  # nothing written before the inputs are known to work


def test_demos_name_a_model_that_does_not_segment_images(image_demo, video_demo, tmp_path,
                                                         capsys):
    """AffinityNet predicts pair affinities: CONFIG is named with the model's own advice."""
    cfg = small_test_config(
        'configs/psa/psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-128x256.py')
    config = str(tmp_path / 'affinitynet.py')
    cfg.dump(config)
    checkpoint = save_untrained(cfg, str(tmp_path / 'affinitynet.pth'))
    image = str(tmp_path / 'street.png')
    mmcv.imwrite(_scene(0), image)
    clip = _write_clip(str(tmp_path / 'clip.avi'), frames=1)
    out = str(tmp_path / 'painted.avi')
    for demo, args in ((image_demo, [image, config, checkpoint, '--out-file', out + '.png']),
                       (video_demo, [clip, config, checkpoint, '--output-file', out])):
        with pytest.raises(SystemExit) as exit_info:
            demo.main(args + ['--device', 'cpu'])
        assert exit_info.value.code == 2
        line = _error_line(capsys)
        assert line.split('error: ', 1)[1].startswith('CONFIG: AffinityNet predicts pair '
                                                      'affinities'), line
    assert not osp.exists(out) and not osp.exists(out + '.png')


@pytest.fixture
def no_model_loading(monkeypatch):
    """The demos' model loading fails the test: their checks must stop them before it."""
    import mmaffseg.cli.inference_args as inference_cli

    def init_model(*args, **kwargs):
        raise AssertionError('the model was loaded before the arguments were checked')

    monkeypatch.setattr(inference_cli, 'init_model', init_model)


def _exit_line(main, argv, capsys) -> str:
    """The one error line of a demo's ``main(argv)``, which must exit with status 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.skipif(sys.platform in ('win32', 'cygwin', 'darwin'),
                    reason='a window needs $DISPLAY / $WAYLAND_DISPLAY on Linux and BSD only')
def test_demos_without_a_display_ask_for_an_output_file(image_demo, video_demo, tmp_path,
                                                        monkeypatch, capsys,
                                                        no_model_loading):
    """Without a display the image demo waited forever for a key press in a window that never
    opened (matplotlib's Agg backend) and ``video_demo.py --show`` was aborted by OpenCV's Qt
    (SIGABRT): both stop at once and name the output file argument."""
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    image = str(tmp_path / 'street.png')
    mmcv.imwrite(_scene(0), image)
    clip = _write_clip(str(tmp_path / 'clip.avi'), frames=1)
    line = _exit_line(image_demo.main, [image, 'model.py', 'model.pth', '--device', 'cpu'],
                      capsys)
    assert line.endswith('error: no display for a window (DISPLAY and WAYLAND_DISPLAY are '
                         'unset): give --out-file FILE (e.g. painted.png) to write the painted '
                         'image'), line
    line = _exit_line(video_demo.main, [clip, 'model.py', 'model.pth', '--show', '--device',
                                        'cpu', '--output-file', str(tmp_path / 'out.avi')],
                      capsys)
    assert 'error: no display for a window' in line and '--output-file OUT.avi' in line, line
    assert 'instead of --show' in line and not osp.exists(tmp_path / 'out.avi')


def test_demos_name_a_window_toolkit_that_cannot_show(image_demo, video_demo, tmp_path,
                                                      monkeypatch, capsys, no_model_loading):
    """A display, but matplotlib's file-only backend (the image demo's window) or OpenCV built
    without a GUI (``cv2.imshow``, the video demo's)."""
    import matplotlib
    monkeypatch.setenv('DISPLAY', ':99')
    monkeypatch.setattr(matplotlib, 'get_backend', lambda *args, **kwargs: 'agg')
    monkeypatch.setattr(cv2, 'getBuildInformation',
                        lambda: 'General configuration\n  GUI:    NONE\n  Video I/O:\n')
    image = str(tmp_path / 'street.png')
    mmcv.imwrite(_scene(0), image)
    clip = _write_clip(str(tmp_path / 'clip.avi'), frames=1)
    line = _exit_line(image_demo.main, [image, 'model.py', 'model.pth'], capsys)
    assert "error: matplotlib's backend agg cannot open a window" in line, line
    assert line.endswith('give --out-file FILE (e.g. painted.png) to write the painted image')
    line = _exit_line(video_demo.main, [clip, 'model.py', 'model.pth', '--show'], capsys)
    assert 'is built without a GUI' in line and '--output-file OUT.avi' in line, line


def test_image_demo_checks_its_arguments_before_loading_the_model(image_demo, tmp_path, capsys,
                                                                  no_model_loading):
    """Each was a traceback after the model had run (the work lost), or from mmengine."""
    image = str(tmp_path / 'street.png')
    mmcv.imwrite(_scene(0), image)
    (tmp_path / 'folder.png').mkdir()
    (tmp_path / 'a_file').write_text('')
    not_config = tmp_path / 'cfg.txt'
    not_config.write_text("model = dict(type='EncoderDecoder')\n")
    new = tmp_path / 'new'
    cases = [
        (['--out-file', str(new / 'painted')],
         f'--out-file: {new / "painted"} has no extension, which tells OpenCV the format to '
         f'write; give e.g. {new / "painted"}.png'),
        (['--out-file', str(new / 'painted.xyz')],
         f'--out-file: OpenCV has no image writer for .xyz files ({new / "painted.xyz"}); give '
         'a .png or .jpg file'),
        (['--out-file', str(tmp_path / 'folder.png')],
         f'--out-file: {tmp_path / "folder.png"} is a folder; give a file name, e.g. '
         f'{tmp_path / "folder.png" / "painted.png"}'),
        (['--out-file', str(tmp_path / 'a_file' / 'painted.png')],
         f'--out-file: the folder {tmp_path / "a_file"} cannot be created or written'),
        (['--device', 'bogus'], "--device: 'bogus' is not a device; give cpu, cuda or cuda:N"),
        (['--device', 'cuda:99'], '--device: cuda:99 is not available ('),
        (['--config', str(not_config)],
         f'CONFIG: {not_config} is not a config file (suffix .txt); give a '
         '.py/.json/.yaml/.yml config'),
    ]
    for options, message in cases:
        config = options[1] if options[0] == '--config' else 'model.py'
        options = ['--out-file', str(tmp_path / 'ok.png')] + (
            [] if options[0] == '--config' else options)
        if '--device' not in options:
            options += ['--device', 'cpu']
        line = _exit_line(image_demo.main, [image, config, 'model.pth'] + options, capsys)
        assert f'error: {message}' in line, (options, line)
    assert not new.exists() and not (tmp_path / 'ok.png').exists()


def test_video_demo_checks_its_output_before_loading_the_model(video_demo, tmp_path, capsys,
                                                               no_model_loading):
    """An existing folder was blamed on the fourcc, and only once the model was loaded and the
    first frame painted (the writer opened with it)."""
    clip = _write_clip(str(tmp_path / 'clip.avi'), frames=1)
    (tmp_path / 'folder.avi').mkdir()
    new = tmp_path / 'new'
    cases = [
        (str(tmp_path / 'folder.avi'),
         f'--output-file: {tmp_path / "folder.avi"} is a folder; give a file name, e.g. '
         f'{tmp_path / "folder.avi" / "painted.avi"}'),
        (str(new / 'painted'), f'--output-file: {new / "painted"} has no extension'),
        (str(new / 'painted.xyz'),
         f'--output-file: OpenCV cannot write {new / "painted.xyz"} with fourcc MJPG at '
         f'{HW[1]}x{HW[0]}, 5 fps; use a fourcc that suits the file extension'),
    ]
    for out, message in cases:
        line = _exit_line(video_demo.main,
                          [clip, 'model.py', 'model.pth', '--output-file', out, '--device',
                           'cpu'], capsys)
        assert f'error: {message}' in line, (out, line)
    assert not new.exists()


def test_image_demo_paints_a_one_pixel_image(image_demo, model_files, tmp_path):
    """mmseg's painting raised IndexError on a 1x1 prediction."""
    config, checkpoint = model_files
    image = str(tmp_path / 'one.png')
    mmcv.imwrite(np.full((1, 1, 3), 90, np.uint8), image)
    out = str(tmp_path / 'one.out.png')
    image_demo.main([image, config, checkpoint, '--out-file', out, '--device', 'cpu'])
    assert mmcv.imread(out).shape == (1, 1, 3)
