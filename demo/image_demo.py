# Copyright (c) mmaffseg contributors. All rights reserved.
"""Segment one image and paint the prediction on it (mmseg's ``demo/image_demo.py``).

    python demo/image_demo.py IMG CONFIG CHECKPOINT [--out-file FILE] [--device cpu]
        [--opacity 0.5] [--with-labels] [--title result] [--non-strict] [--allow-nonfinite-weights]

Writes the painted image (the input's size) to ``--out-file``, or shows it in a window when
no ``--out-file`` is given (where no window can open, on a machine without a display or with
matplotlib's file-only backend, the demo stops at once and asks for ``--out-file``). Every
mmaffseg family is painted: label maps, instances with their class names and scores,
embeddings as their PCA picture. The checkpoint is loaded safely and strictly
(docs/checkpoints.md). A missing or unreadable IMG, CONFIG or CHECKPOINT, an ``--out-file``
OpenCV cannot write (a folder, no or an unknown extension, an unwritable folder) and a
``--device`` that is not available here exit with status 2 and a one-line message naming it,
before the model is loaded. IMG is read as mmaffseg's loaders read images: an
image above the pixel limit is refused before decoding, and EXIF orientation is ignored (the
painted image has the stored pixel grid; docs/datasets.md).
"""
from argparse import ArgumentParser, Namespace
from typing import Optional, Sequence

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
    image_writer_problem,
    inference_or_exit,
    load_model_or_exit,
)
from mmaffseg.utils.config_errors import DataFileError
from mmaffseg.utils.image_io import decode_image


def parse_args(argv: Optional[Sequence[str]] = None) -> Namespace:
    parser = ArgumentParser(description='Segment an image and paint the prediction on it')
    parser.add_argument('img', help='Image file')
    add_model_args(parser)
    parser.add_argument('--out-file', default=None,
                        help='Path to output file (default: show the result in a window)')
    add_painting_args(parser)
    parser.add_argument('--title', default='result', help='The image identifier.')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.out_file is None:
        check_window('matplotlib', 'give --out-file FILE (e.g. painted.png) to write the '
                     'painted image')
    check_opacity(args.opacity)
    check_input_file(args.img, 'IMG', 'image file')
    with open(args.img, 'rb') as f:
        content = f.read()
    try:
        # BGR, as mmseg reads it; under the pixel limit, on the stored grid (EXIF orientation
        # ignored), as mmaffseg's loaders read images (docs/datasets.md)
        image = decode_image(content, args.img)
    except DataFileError as e:  # above the pixel limit, refused before decoding
        exit_with_error(f'IMG: {e}')
    except Exception:  # noqa: BLE001 - an empty or undecodable file (cv2.error, ...)
        image = None
    if image is None:
        exit_with_error(f'IMG: {args.img} is not an image file OpenCV can read; give a PNG, '
                        'JPEG or another image format')
    if args.out_file is not None:
        check_output_file(args.out_file, '--out-file', 'painted.png', image_writer_problem)

    model = load_model_or_exit(args)
    result = inference_or_exit(model, image)
    show_result_pyplot(
        model,
        image,
        result,
        title=args.title,
        opacity=args.opacity,
        withLabels=args.with_labels,
        draw_gt=False,
        show=args.out_file is None,
        out_file=args.out_file)
    if args.out_file:
        print(f'painted {args.img} into {args.out_file}')


if __name__ == '__main__':
    main()
