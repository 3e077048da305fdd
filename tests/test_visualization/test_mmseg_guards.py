# Copyright (c) mmaffseg contributors. All rights reserved.
"""mmseg's own SegLocalVisualizer and MMSegInferencer stop with the documented alternative on
instance and embedding predictions (mmaffseg/visualization/mmseg_guards.py), and
AffSegLocalVisualizer paints images of any memory layout (mmseg's browse_dataset.py)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData, PixelData
from mmseg.apis import MMSegInferencer
from mmseg.structures import SegDataSample
from mmseg.utils import get_classes, get_palette
from mmseg.visualization import SegLocalVisualizer

import mmaffseg  # noqa: F401  (installs the guards, as custom_imports does)
from mmaffseg.visualization import AffSegLocalVisualizer, unpaintable_prediction

H, W = 24, 40


def _visualizer(name, cls):
    vis = cls(name=name)
    vis.dataset_meta = dict(classes=get_classes('cityscapes'), palette=get_palette('cityscapes'))
    return vis


def _samples() -> dict:
    seg = torch.zeros(1, H, W, dtype=torch.long)
    seg[:, :, W // 2:] = 13
    semantic = SegDataSample(pred_sem_seg=PixelData(data=seg), gt_sem_seg=PixelData(data=seg))
    embedding = SegDataSample(seg_logits=PixelData(data=torch.randn(8, H, W)))
    masks = torch.zeros(1, H, W, dtype=torch.bool)
    masks[0, 4:12, 5:20] = True
    instances = SegDataSample(pred_instances=InstanceData(
        masks=masks, labels=torch.tensor([2]), scores=torch.tensor([0.8])))
    instances.set_metainfo(dict(thing_class_ids=(11, 12, 13)))
    return dict(semantic=semantic, embedding=embedding, instances=instances)


def test_unpaintable_prediction():
    samples = _samples()
    assert unpaintable_prediction(samples['semantic']) is None
    assert unpaintable_prediction(samples['embedding']).startswith('an embedding')
    assert unpaintable_prediction(samples['instances']).startswith('instances')


@pytest.mark.parametrize('kind', ['embedding', 'instances'])
def test_mmseg_visualizer_names_affseg_visualizer(kind, tmp_path):
    image = np.zeros((H, W, 3), np.uint8)
    vis = _visualizer(f'guard_{kind}', SegLocalVisualizer)
    with pytest.raises(ValueError, match=r"mmseg's SegLocalVisualizer cannot paint .*: set "
                       r"visualizer = dict\(type='AffSegLocalVisualizer'\)"):
        vis.add_datasample('x', image, _samples()[kind], out_file=str(tmp_path / 'x.png'))
    # what mmseg paints is unchanged, and ours paints the rest
    vis.add_datasample('x', image, _samples()['semantic'], out_file=str(tmp_path / 'sem.png'))
    ours = _visualizer(f'guard_ours_{kind}', AffSegLocalVisualizer)
    ours.add_datasample('x', image, _samples()[kind], out_file=str(tmp_path / 'ours.png'))
    assert (tmp_path / 'sem.png').is_file() and (tmp_path / 'ours.png').is_file()


@pytest.mark.parametrize('kind', ['embedding', 'instances'])
def test_mmseg_inferencer_names_return_datasamples(kind):
    sample = _samples()[kind]
    stub = SimpleNamespace(num_pred_imgs=0)
    with pytest.raises(ValueError, match='call the inferencer with return_datasamples=True'):
        MMSegInferencer.postprocess(stub, [sample], None, False)
    assert MMSegInferencer.postprocess(stub, [sample], None, True) is sample
    semantic = MMSegInferencer.postprocess(stub, [_samples()['semantic']], None, False)
    assert semantic['predictions'].shape == (H, W)


def test_affseg_visualizer_paints_a_channel_last_view():
    """The image mmseg's browse_dataset.py passes: a (H, W, 3) view of the loader's (3, H, W)
    tensor, colour-swapped by fancy indexing (not C-contiguous)."""
    image = torch.randint(0, 256, (3, H, W), dtype=torch.uint8).permute(1, 2, 0).numpy()
    image = image[..., [2, 1, 0]]
    assert not image.flags['C_CONTIGUOUS']
    sample = SegDataSample(gt_sem_seg=_samples()['semantic'].gt_sem_seg)
    vis = _visualizer('guard_view', AffSegLocalVisualizer)
    vis.add_datasample('x', image, sample, draw_pred=False)
    assert vis.get_image().shape == (H, W, 3)
