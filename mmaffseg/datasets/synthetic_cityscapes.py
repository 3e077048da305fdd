# Copyright (c) mmaffseg contributors. All rights reserved.
"""A procedurally generated street-scene dataset in the exact Cityscapes layout.

Layout written under ``root`` (the same as Cityscapes after mmseg's converter)::

    leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png   uint8, 255 void
    gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png        uint8, 0 void
    gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png     uint16

Generation is atomic: the files are written to a temporary sibling folder that is renamed to
``root`` only when complete, together with a marker file recording the parameters. A folder
without the marker is never taken for a complete dataset.
"""
import json
import os
import os.path as osp
import shutil
import time
from typing import List, Optional, Sequence

import cv2
from mmengine.logging import print_log
from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from ..utils.atomic_io import make_temp_dir
from .street_scene_generator import StreetSceneGenerator

MARKER = '.mmaffseg_synthetic_cityscapes.json'
_FORMAT_VERSION = 1
_CITIES = {'train': ('synthburg', 'pixelstadt', 'renderheim'), 'val': ('valdorf', )}


def _params(num_train: int, num_val: int, seed: int, height: int, width: int) -> dict:
    return dict(format_version=_FORMAT_VERSION, num_train=int(num_train),
                num_val=int(num_val), seed=int(seed), height=int(height), width=int(width))


def read_marker(root: str) -> Optional[dict]:
    """The generation parameters of a complete dataset at ``root``, else ``None``."""
    path = osp.join(root, MARKER)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _write_split(gen: StreetSceneGenerator, tmp_root: str, split: str, num: int, seed: int,
                 index_offset: int, log_every: int) -> None:
    cities = _CITIES[split]
    for i in range(num):
        city = cities[i % len(cities)]
        stem = f'{city}_{i // len(cities):06d}_{19:06d}'
        scene = gen.render(seed, index_offset + i)
        img_dir = osp.join(tmp_root, 'leftImg8bit', split, city)
        gt_dir = osp.join(tmp_root, 'gtFine', split, city)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(gt_dir, exist_ok=True)
        cv2.imwrite(osp.join(img_dir, f'{stem}_leftImg8bit.png'),
                    cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(osp.join(gt_dir, f'{stem}_gtFine_labelTrainIds.png'), scene.label_train_ids)
        cv2.imwrite(osp.join(gt_dir, f'{stem}_gtFine_labelIds.png'), scene.label_ids)
        cv2.imwrite(osp.join(gt_dir, f'{stem}_gtFine_instanceIds.png'),
                    scene.instance_ids.astype('uint16'))
        if log_every and ((i + 1) % log_every == 0 or i + 1 == num):
            print_log(f'synthetic cityscapes: {split} {i + 1}/{num}', logger='current')


def generate_synthetic_cityscapes(root: str,
                                  num_train: int = 300,
                                  num_val: int = 60,
                                  seed: int = 0,
                                  height: int = 256,
                                  width: int = 512,
                                  verbose: bool = True) -> str:
    """Generate the dataset at ``root`` unless an identical complete one is already there.

    Train images use scene indices ``[0, num_train)`` and val images
    ``[10**6, 10**6 + num_val)`` of the stream seeded by ``seed``, so the splits never overlap
    and image ``i`` does not depend on how many images are generated.

    Args:
        root (str): Dataset root to create.
        num_train (int): Number of training images. Default: 300.
        num_val (int): Number of validation images. Default: 60.
        seed (int): Seed of the scene stream. Default: 0.
        height (int): Image height. Default: 256.
        width (int): Image width. Default: 512.
        verbose (bool): Log progress. Default: True.

    Returns:
        str: ``root``.

    Raises:
        FileExistsError: ``root`` exists but is not a complete synthetic dataset with the same
            parameters (nothing is deleted: remove it yourself or choose another root).
    """
    if num_train < 0 or num_val < 0 or num_train + num_val == 0:
        raise ValueError(f'need num_train, num_val >= 0 and at least one image, got '
                         f'{num_train}, {num_val}')
    root = osp.abspath(osp.expanduser(root))
    wanted = _params(num_train, num_val, seed, height, width)
    found = read_marker(root)
    if found == wanted:
        return root
    if found is not None:
        raise FileExistsError(
            f'{root} holds a synthetic Cityscapes dataset generated with {found}, but {wanted} '
            'was requested. Delete the folder or use another data_root.')
    if osp.exists(root) and (not osp.isdir(root) or os.listdir(root)):
        raise FileExistsError(
            f'{root} exists but is not a complete mmaffseg synthetic dataset (no {MARKER}); it '
            'may be a half-written or foreign folder. Delete it or use another data_root.')
    parent = osp.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tmp_root = make_temp_dir(f'.{osp.basename(root)}.tmp-', parent)
    start = time.time()
    try:
        gen = StreetSceneGenerator(height, width)
        log_every = max(1, (num_train + num_val) // 10) if verbose else 0
        _write_split(gen, tmp_root, 'train', num_train, seed, 0, log_every)
        _write_split(gen, tmp_root, 'val', num_val, seed, 10**6, log_every)
        with open(osp.join(tmp_root, MARKER), 'w', encoding='utf-8') as f:
            json.dump(wanted, f)
        if osp.isdir(root):  # an empty folder left by the user or another process
            os.rmdir(root)
        os.rename(tmp_root, root)
    except OSError:
        # Another process may have completed the same dataset first: accept it.
        shutil.rmtree(tmp_root, ignore_errors=True)
        if read_marker(root) == wanted:
            return root
        raise
    except BaseException:
        shutil.rmtree(tmp_root, ignore_errors=True)
        raise
    if verbose:
        print_log(f'synthetic cityscapes: wrote {num_train} train + {num_val} val images to '
                  f'{root} in {time.time() - start:.1f} s', logger='current')
    return root


@DATASETS.register_module()
class SyntheticCityscapesDataset(CityscapesDataset):
    """mmseg's :class:`CityscapesDataset` over the synthetic scenes, generated on first use.

    Args:
        data_root (str): Dataset root; generated there if missing.
        num_train (int): Training images to generate. Default: 300.
        num_val (int): Validation images to generate. Default: 60.
        seed (int): Seed of the scene stream. Default: 0.
        image_size (Sequence[int]): (height, width) of generated images. Default: (256, 512).
        auto_generate (bool): Generate the data when missing. Default: True.
        holdout (str, optional): A held-back selection split of the images under
            ``data_prefix`` (meant for the training images): every ``holdout_every``-th image
            in path order is held back. ``'exclude'`` drops those (the images to fit on),
            ``'only'`` keeps just those (the images to choose settings on). Default: None
            (every image).
        holdout_every (int): One image in this many is held back. Default: 5 (60 of the 300
            training images, as many as the validation split).
        **kwargs: Passed to :class:`CityscapesDataset` (``data_prefix``, ``pipeline``...).
    """

    def __init__(self,
                 data_root: str,
                 num_train: int = 300,
                 num_val: int = 60,
                 seed: int = 0,
                 image_size: Sequence[int] = (256, 512),
                 auto_generate: bool = True,
                 holdout: Optional[str] = None,
                 holdout_every: int = 5,
                 **kwargs):
        if holdout not in (None, 'exclude', 'only'):
            raise ValueError("SyntheticCityscapesDataset holdout must be None, 'exclude' (fit "
                             "on the images not held back) or 'only' (the held-back images), "
                             f'got {holdout!r}')
        if holdout is not None and int(holdout_every) < 2:
            raise ValueError('SyntheticCityscapesDataset holdout_every must be >= 2 (one image '
                             f'in holdout_every is held back), got {holdout_every}')
        self.holdout = holdout
        self.holdout_every = int(holdout_every)
        if auto_generate:
            generate_synthetic_cityscapes(data_root, num_train, num_val, seed, *image_size)
        elif read_marker(data_root) is None:
            raise FileNotFoundError(
                f'no complete synthetic Cityscapes dataset at {data_root}; generate it with '
                f'`python tools/dataset_converters/synthetic_cityscapes.py {data_root}` or set '
                'auto_generate=True')
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Cityscapes' list of images (sorted by path), restricted to ``holdout``'s part."""
        data_list = super().load_data_list()
        if self.holdout is None:
            return data_list
        held = [i % self.holdout_every == self.holdout_every - 1 for i in range(len(data_list))]
        keep = (lambda h: h) if self.holdout == 'only' else (lambda h: not h)
        return [info for info, h in zip(data_list, held) if keep(h)]
