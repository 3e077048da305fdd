# Copyright (c) mmaffseg contributors. All rights reserved.
"""Where does an instance-embedding model fail: the embedding, or the seediness classifier?

    python tools/analysis_tools/instance_embedding_diagnostics.py CONFIG CHECKPOINT
        [--num-val 20] [--num-train 16] [--threads 2] [--seed 0] [--cfg-options ...]

For an ``InstanceEmbeddingSegmentor`` (Fathi et al., arXiv:1703.10277), at the heads'
resolution, with the model in eval mode:

The heads run on the features of the model's pyramid, as it was trained and tests:
``test_cfg.scales`` on validation images, ``train_cfg.scales`` on training crops (both printed).

- on the first ``--num-val`` validation images, for every thing instance: the IoU of the mask
  grown from its oracle seed (:func:`mmaffseg.instance_embedding.oracle_seeds`: its best own
  pixel and tau), whether the seediness classifier names the instance's class at that seed and
  tau, and the largest seediness inside the instance; per image, the largest seediness on pixels
  of no instance. Reported by instance size and by class.
- on ``--num-train`` training crops (the training pipeline, seeded): the share of the points
  sampled for the losses whose seediness target (:func:`seed_class_targets`) is an object class,
  per tau, and how often the classifier predicts an object class there.

A good embedding with a poor classifier shows high oracle IoUs but low classifier accuracy and
seediness no higher inside instances than outside them.
"""
import argparse
from collections import defaultdict

import numpy as np
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

import mmaffseg  # noqa: F401
from mmaffseg.cli import CfgOptionsAction, config_errors_exit, load_config
from mmaffseg.instance_embedding import oracle_seeds, seed_class_targets
from mmaffseg.structures.instance_map import instance_classes
from mmaffseg.utils import load_model_weights

SIZE_BINS = ((0, 30), (30, 100), (100, 400), (400, None))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Diagnose an instance-embedding model')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--num-val', type=int, default=20, help='validation images')
    parser.add_argument('--num-train', type=int, default=16, help='training crops')
    parser.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--seed', type=int, default=0, help='seed of the training pipeline')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args()


def _heads_and_maps(model, dataset, i: int, training: bool):
    """Embedding (d, h, w), probabilities (T, C+1, h*w), instance and semantic maps (h, w)."""
    item = dataset[i]
    data = model.data_preprocessor(
        dict(inputs=[item['inputs']], data_samples=[item['data_samples']]), training)
    with torch.no_grad():
        scales = model.train_cfg['scales'] if training else model.test_cfg['scales']
        embedding, logits = model.head_outputs(data['inputs'], scales=scales)
    inst, sem = model.gt_maps_at(data['data_samples'], embedding.shape[-2:])
    return embedding[0], logits[0].softmax(1).flatten(2), inst[0], sem[0]


def validation_rows(model, dataset, num: int) -> tuple:
    """Per instance (class, size, oracle IoU, classifier right, max seediness inside) and
    per image the max seediness outside every instance."""
    rows, outside = [], []
    taus, ignore = model.seediness_head.taus, model.decode_head.ignore_index
    for i in range(min(num, len(dataset))):
        embedding, probs, inst, sem = _heads_and_maps(model, dataset, i, training=False)
        seediness = model.seediness_head.seediness(probs[None])[0]  # (h*w,)
        ids, classes = instance_classes(inst, sem, model.thing_class_ids, ignore)
        ids, classes = ids[classes >= 0], classes[classes >= 0]
        flat = inst.reshape(-1)
        background = (flat == 0)
        if background.any():
            outside.append(float(seediness[background].max()))
        iou, tau, pixel = oracle_seeds(embedding, inst, ids, taus, ignore)
        for k in range(ids.numel()):
            member = flat == ids[k]
            predicted = int(probs[tau[k], :, pixel[k]].argmax()) - 1
            rows.append((int(classes[k]), int(member.sum()), float(iou[k]),
                         predicted == int(classes[k]), float(seediness[member].max())))
    return rows, outside


def target_rates(model, dataset, num: int) -> dict:
    """Share of sampled points with an object target / an object prediction, per tau."""
    taus, ignore = model.seediness_head.taus, model.decode_head.ignore_index
    positive = torch.zeros(len(taus))
    predicted = torch.zeros(len(taus))
    total = 0
    for i in range(min(num, len(dataset))):
        embedding, probs, inst, sem = _heads_and_maps(model, dataset, i, training=True)
        points = model.decode_head.sample_points(inst[None])[0]
        if points is None:
            continue
        index = points[0]
        targets = seed_class_targets(
            embedding, inst, instance_classes(inst, sem, model.thing_class_ids, ignore), index,
            taus, model.train_cfg['iou_thr'], ignore)
        positive += (targets > 0).sum(1).float()
        predicted += (probs[:, :, index].argmax(1) > 0).sum(1).float()
        total += index.numel()
    total = max(total, 1)
    return dict(points=total, target=(positive / total).tolist(),
                predicted=(predicted / total).tolist())


def _summary(label: str, rows: list) -> str:
    r = np.asarray(rows, dtype=np.float64)
    return (f'{label:<16} {len(r):>5} {r[:, 2].mean():>10.3f} {np.mean(r[:, 2] > 0.5):>10.2f} '
            f'{r[:, 3].mean():>10.2f} {r[:, 4].mean():>12.3f}')


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    with config_errors_exit():  # e.g. a misspelt --cfg-options key
        cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.pretrained = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if not hasattr(model, 'seediness_head'):
        raise SystemExit(f'{args.config} is not an InstanceEmbeddingSegmentor config')
    load_model_weights(model, args.checkpoint)
    model.eval()

    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    rows, outside = validation_rows(model, val_set, args.num_val)
    if not rows:
        raise SystemExit('no thing instance in the validation images read')
    names = val_set.metainfo.get('classes')
    header = (f'{"instances":<16} {"n":>5} {"oracle IoU":>10} {"IoU > 0.5":>10} '
              f'{"cls right":>10} {"seedy inside":>12}')
    lines = [f'validation: {len(rows)} thing instances in {args.num_val} images '
             '(sizes in pixels at the heads\' resolution; features of the pyramid '
             f'{tuple(model.test_cfg["scales"])})', header]
    for lo, hi in SIZE_BINS:
        chosen = [r for r in rows if r[1] >= lo and (hi is None or r[1] < hi)]
        if chosen:
            lines.append(_summary(f'size {lo}-{hi or "inf"}', chosen))
    by_class = defaultdict(list)
    for r in rows:
        by_class[r[0]].append(r)
    for c in sorted(by_class):
        cid = model.thing_class_ids[c]
        lines.append(_summary(names[cid] if names and cid < len(names) else str(cid),
                              by_class[c]))
    lines.append(_summary('all', rows))
    lines.append(f'max seediness outside instances, mean over images: {np.mean(outside):.3f}')
    rates = target_rates(model, DATASETS.build(cfg.train_dataloader.dataset), args.num_train)
    taus = ', '.join(f'{t:g}' for t in model.seediness_head.taus.tolist())
    lines.append(f'training crops: {rates["points"]} sampled points (features of the pyramid '
                 f'{tuple(model.train_cfg["scales"])}); per tau ({taus}):')
    lines.append('  object target    ' + ' '.join(f'{v:6.3f}' for v in rates['target']))
    lines.append('  object predicted ' + ' '.join(f'{v:6.3f}' for v in rates['predicted']))
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
