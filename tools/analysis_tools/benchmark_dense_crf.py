# Copyright (c) mmaffseg contributors. All rights reserved.
"""Time mmaffseg's DenseCRF: seconds per image, serial and with a process pool.

    python tools/analysis_tools/benchmark_dense_crf.py --size 375 500 --labels 3 21 \
        --images 4 --workers 2
"""
import argparse
import time

import numpy as np

from mmaffseg.postprocessing import DenseCRF


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark the dense CRF (pydensecrf).')
    parser.add_argument('--size', type=int, nargs=2, default=[375, 500], metavar=('H', 'W'))
    parser.add_argument('--labels', type=int, nargs='+', default=[3, 21])
    parser.add_argument('--images', type=int, default=4, help='images per batch')
    parser.add_argument('--workers', type=int, default=2, help='pool size for the batch run')
    parser.add_argument('--iterations', type=int, default=10)
    return parser.parse_args()


def main():
    args = parse_args()
    h, w = args.size
    rng = np.random.default_rng(0)
    print(f'{args.images} images of {h}x{w}, {args.iterations} iterations')
    pooled = f'{args.workers} workers s/img'
    print(f'{"labels":>6} {"serial s/img":>13} {pooled:>17} {"speed-up":>9}')
    for num_labels in args.labels:
        probs = [rng.dirichlet(np.ones(num_labels), (h, w)).transpose(2, 0, 1).astype(np.float32)
                 for _ in range(args.images)]
        imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.images)]
        times = {}
        for workers in (0, args.workers):
            crf = DenseCRF(iterations=args.iterations, workers=workers)
            start = time.perf_counter()
            crf.batch(probs, imgs)
            times[workers] = (time.perf_counter() - start) / args.images
        print(f'{num_labels:>6} {times[0]:>13.3f} {times[args.workers]:>17.3f} '
              f'{times[0] / times[args.workers]:>8.2f}x')


if __name__ == '__main__':
    main()
