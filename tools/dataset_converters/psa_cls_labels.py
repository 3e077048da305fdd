# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert PSA's official image-level labels (cls_labels.npy, a pickled dict) to .json / .npz.

    python tools/dataset_converters/psa_cls_labels.py IN.npy OUT.json|OUT.npz
        [--num-classes 20] [--trust]

The official file is jiwoon-ahn/psa's voc12/cls_labels.npy (12031 VOC train_aug + val images,
made from the VOC XML annotations). The VOC configs expect it converted to
data/VOCdevkit/VOC2012/cls_labels.json:

    python tools/dataset_converters/psa_cls_labels.py psa/voc12/cls_labels.npy \\
        data/VOCdevkit/VOC2012/cls_labels.json

The pickle is read by a restricted unpickler that builds numpy arrays and nothing else: a file
that needs anything more is refused (exit 2) and nothing in it runs. --trust unpickles fully
(np.load(allow_pickle=True)), which runs whatever code the file carries: use it only for a file
whose origin you trust. The output is read by LoadImageLevelLabels without unpickling.
"""
import argparse
import os.path as osp
import sys

from mmaffseg.datasets.image_level_labels import read_class_label_file, write_class_label_file
from mmaffseg.datasets.psa_cls_labels import UntrustedPickleError, read_psa_cls_labels


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help="the pickled labels (PSA's voc12/cls_labels.npy)")
    parser.add_argument('out', help='output label file, .json (class indices) or .npz')
    parser.add_argument('--num-classes', type=int, default=20,
                        help='entries of every label vector (default: 20, VOC)')
    parser.add_argument('--trust', action='store_true',
                        help='unpickle SRC fully (runs any code in it): only for trusted files')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if osp.splitext(args.out)[1].lower() not in ('.json', '.npz'):
        print(f'error: OUT {args.out!r} must end in .json or .npz', file=sys.stderr)
        return 2
    if not osp.isfile(args.src):
        print(f'error: SRC {args.src!r} does not exist', file=sys.stderr)
        return 2
    try:
        table = read_psa_cls_labels(args.src, args.num_classes, trust=args.trust)
    except (UntrustedPickleError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    write_class_label_file(table, args.out)
    # read back as LoadImageLevelLabels will, and check the round trip
    back = read_class_label_file(args.out, args.num_classes)
    if back.keys() != table.keys() or any((back[k] != v).any() for k, v in table.items()):
        print(f'error: {args.out} does not read back as {args.src}', file=sys.stderr)
        return 1
    print(f'{len(table)} images, {args.num_classes} classes: {args.src} -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
