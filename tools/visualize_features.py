# Copyright (c) mmaffseg contributors. All rights reserved.
"""Save RGB pictures of a feature-embedding model's per-pixel features (Semantic Soft
Segmentation style: clamp, guided filter, PCA or random projection, min-max).

    python tools/visualize_features.py CONFIG CHECKPOINT IMG_OR_DIR [--out DIR]
        [--methods pca random] [--radius 10] [--eps 0.01] [--device cpu]

Writes ``<image stem>_features_<method>.png`` (the input's size) into ``--out``, or next to each
input when ``--out`` is not given. The checkpoint is loaded safely and strictly
(docs/checkpoints.md).
"""
import argparse
from typing import Optional, Sequence

import mmaffseg  # noqa: F401  (registers mmaffseg modules into mmseg's registries)
from mmaffseg.utils import load_model_weights
from mmaffseg.visualization.feature_pictures import list_images, save_feature_pictures


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Visualise per-pixel embedding features')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('img', help='an image file or a folder of images')
    parser.add_argument('--out', help='output folder (default: next to each input)')
    parser.add_argument('--methods', nargs='+', default=['pca', 'random'],
                        choices=['pca', 'random'], help='projections to 3 channels')
    parser.add_argument('--radius', type=int, default=10,
                        help='guided filter radius in pixels (0: no filter)')
    parser.add_argument('--eps', type=float, default=0.01, help='guided filter eps')
    parser.add_argument('--clamp', type=float, default=5.0, help='feature clamp')
    parser.add_argument('--seed', type=int, default=0, help='random projection seed')
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    from mmseg.apis import init_model

    model = init_model(args.config, None, device=args.device)
    load_model_weights(model, args.checkpoint, map_location=args.device)
    for path in list_images(args.img):
        for out in save_feature_pictures(model, path, args.out, args.methods, args.radius,
                                         args.eps, args.clamp, args.seed):
            print(out)


if __name__ == '__main__':
    main()
