# Copyright (c) mmaffseg contributors. All rights reserved.
"""Segment every frame of a video (or a webcam) and paint the predictions on it (mmseg's
``demo/video_demo.py``).

    python demo/video_demo.py VIDEO CONFIG CHECKPOINT [--output-file OUT.avi]
        [--output-fourcc MJPG] [--output-fps N] [--output-height H] [--output-width W]
        [--show] [--show-wait-time 1] [--device cpu] [--opacity 0.5] [--with-labels]
        [--non-strict] [--allow-nonfinite-weights]

VIDEO is a video file OpenCV reads, or a webcam index (``0``). The painted frames are written
with OpenCV's ``VideoWriter`` to ``--output-file`` (one frame per input frame, at the input's
frame rate and size unless ``--output-fps`` / ``--output-height`` / ``--output-width`` say
otherwise; the fourcc must suit the container, e.g. ``MJPG`` for ``.avi``, ``mp4v`` for
``.mp4``) and/or shown in a window (``--show``). Bad input exits with status 2 and a one-line
message naming the argument, before the model is loaded: a VIDEO OpenCV cannot open, an
``--output-file`` OpenCV cannot write with ``--output-fourcc`` (a folder, no extension, a
container that does not take the fourcc: checked by opening a writer on a temporary file of the
same extension), a ``--device`` that is not available here, and ``--show`` where no window can
open (no display, or OpenCV without a GUI).
"""
import os.path as osp
import tempfile
from argparse import ArgumentParser, Namespace
from typing import Optional, Sequence, Tuple, Union

import cv2
import mmcv

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.apis import show_result_pyplot
from mmaffseg.cli import exit_with_error
from mmaffseg.cli.inference_args import (
    add_model_args,
    add_painting_args,
    check_input_file,
    check_opacity,
    check_output_file,
    check_window,
    inference_or_exit,
    load_model_or_exit,
)

#: frame rate written when the input does not report one (some webcams)
DEFAULT_FPS = 30.0


def parse_args(argv: Optional[Sequence[str]] = None) -> Namespace:
    parser = ArgumentParser(description='Segment a video and paint the predictions on it')
    parser.add_argument('video', help='Video file or webcam id')
    add_model_args(parser)
    parser.add_argument('--show', action='store_true', help='Whether to show draw result')
    parser.add_argument('--show-wait-time', default=1, type=int,
                        help='Wait time after imshow (ms)')
    parser.add_argument('--output-file', default=None, type=str, help='Output video file path')
    parser.add_argument('--output-fourcc', default='MJPG', type=str,
                        help='Fourcc of the output video (MJPG for .avi, mp4v for .mp4)')
    parser.add_argument('--output-fps', default=-1, type=float,
                        help='FPS of the output video (default: the input\'s)')
    parser.add_argument('--output-height', default=-1, type=int,
                        help='Frame height of the output video (default: the input\'s)')
    parser.add_argument('--output-width', default=-1, type=int,
                        help='Frame width of the output video (default: the input\'s)')
    add_painting_args(parser)
    return parser.parse_args(argv)


def open_video(video: str) -> cv2.VideoCapture:
    """The capture of a video file or a webcam index; exit 2 naming VIDEO if it fails."""
    source: Union[str, int] = int(video) if video.isdigit() else video
    if isinstance(source, str):
        check_input_file(source, 'VIDEO', 'video file')
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        kind = 'webcam' if isinstance(source, int) else 'video file'
        exit_with_error(f'VIDEO: OpenCV cannot open the {kind} {video}; give a video file '
                        'OpenCV reads (e.g. .avi, .mp4) or the index of a connected webcam')
    return cap


def check_fourcc(fourcc: str) -> None:
    """Exit 2 naming ``--output-fourcc`` unless it has the 4 characters of a fourcc."""
    if len(fourcc) != 4:
        exit_with_error(f'--output-fourcc: expected 4 characters (e.g. MJPG, mp4v), got '
                        f'{fourcc!r}')


def open_writer(args: Namespace, path: str, fps: float,
                size: Tuple[int, int]) -> cv2.VideoWriter:
    """OpenCV's writer of ``path`` with ``--output-fourcc`` at ``fps`` and ``size`` (w, h)."""
    return cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*args.output_fourcc), fps, size, True)


def writer_problem(args: Namespace, fps: float, size: Tuple[int, int]) -> str:
    """The message of an ``--output-file`` that OpenCV's writer does not open."""
    return (f'OpenCV cannot write {args.output_file} with fourcc {args.output_fourcc} at '
            f'{size[0]}x{size[1]}, {fps:g} fps; use a fourcc that suits the file extension '
            '(MJPG for .avi, mp4v for .mp4) or another extension')


def check_video_output(args: Namespace, fps: float, size: Tuple[int, int]) -> None:
    """Exit 2 naming ``--output-file`` / ``--output-fourcc`` unless a video can be written
    there: a file name with an extension in a writable folder, and a writer that opens on a
    temporary file of the same extension (no file is left at ``--output-file``)."""
    check_fourcc(args.output_fourcc)

    def problem(path: str) -> Optional[str]:
        level = cv2.utils.logging.getLogLevel()
        # (OpenCV's own warning about a refused file would precede the one-line message)
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            with tempfile.TemporaryDirectory() as folder:
                writer = open_writer(args, osp.join(folder, 'probe' + osp.splitext(path)[1]),
                                     fps, size)
                opened = writer.isOpened()
                writer.release()
        finally:
            cv2.utils.logging.setLogLevel(level)
        return None if opened else writer_problem(args, fps, size)

    check_output_file(args.output_file, '--output-file', 'painted.avi', problem)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if not (args.show or args.output_file):
        exit_with_error('no output: give --output-file OUT.avi (or another video file) and/or '
                        '--show')
    if args.show:
        check_window('cv2', 'give --output-file OUT.avi (or another video file) instead of '
                     '--show')
    check_opacity(args.opacity)
    cap = open_video(args.video)
    input_fps = cap.get(cv2.CAP_PROP_FPS)
    width = args.output_width if args.output_width > 0 else int(
        cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = args.output_height if args.output_height > 0 else int(
        cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = args.output_fps if args.output_fps > 0 else (input_fps or DEFAULT_FPS)
    if width <= 0 or height <= 0:
        exit_with_error(f'VIDEO: OpenCV reads no frame size from {args.video}; give a video '
                        'file OpenCV decodes')
    if args.output_file:
        check_video_output(args, fps, (width, height))
    model = load_model_or_exit(args)
    writer = None  # opened with the first painted frame: no file is left by a failed start
    frames = 0
    try:
        while True:
            ok, frame = cap.read()  # BGR
            if not ok:
                break
            result = inference_or_exit(model, frame)
            painted = mmcv.rgb2bgr(
                show_result_pyplot(model, frame, result, opacity=args.opacity,
                                   withLabels=args.with_labels, draw_gt=False, show=False))
            if args.show:
                cv2.imshow('video_demo', painted)
                cv2.waitKey(args.show_wait_time)
            if args.output_file:
                if writer is None:
                    writer = open_writer(args, args.output_file, fps, (width, height))
                    if not writer.isOpened():  # checked on a temporary file at the start
                        exit_with_error('--output-file: ' +
                                        writer_problem(args, fps, (width, height)))
                if painted.shape[:2] != (height, width):
                    painted = cv2.resize(painted, (width, height))
                writer.write(painted)
            frames += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        if args.show:
            cv2.destroyAllWindows()
    if frames == 0:
        exit_with_error(f'VIDEO: no frame could be read from {args.video}; give a video file '
                        'OpenCV decodes')
    if writer is not None:
        print(f'painted {frames} frame(s) of {args.video} into {args.output_file} '
              f'({width}x{height}, {fps:g} fps)')


if __name__ == '__main__':
    main()
