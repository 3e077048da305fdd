# Copyright (c) mmaffseg contributors. All rights reserved.
"""Generate the synthetic street-scene dataset in Cityscapes layout.

    python tools/dataset_converters/synthetic_cityscapes.py OUT [--num-train 300]
        [--num-val 60] [--seed 0] [--height 256] [--width 512]

Writing is atomic: OUT appears only once every file is written. An identical existing dataset
is left as is; a different or incomplete folder at OUT is an error (nothing is deleted).
"""
import argparse

from mmaffseg.datasets.synthetic_cityscapes import generate_synthetic_cityscapes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', help='dataset root to create')
    parser.add_argument('--num-train', type=int, default=300)
    parser.add_argument('--num-val', type=int, default=60)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--width', type=int, default=512)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    root = generate_synthetic_cityscapes(args.out, args.num_train, args.num_val, args.seed,
                                         args.height, args.width)
    print(f'synthetic Cityscapes dataset ready at {root}')


if __name__ == '__main__':
    main()
