# Copyright (c) mmaffseg contributors. All rights reserved.
"""mmseg's inference entry points (``init_model``, ``inference_model``, ``show_result_pyplot``,
``MMSegInferencer``) on a checkpoint of every mmaffseg model family, as for mmseg's models.

mmseg removes only a transform named ``LoadAnnotations`` from the test pipeline before
inference; mmaffseg's loaders (``LoadCheckedAnnotations``, ``LoadInstanceMap``,
``LoadImageLevelLabels``) pass a sample without a label path through. The checkpoints are the
quick-start configs at random weights (``state_dict`` + plain ``meta``: see tests/untrained.py).
"""
import os
import os.path as osp

import mmcv
import numpy as np
import pytest
from mmseg.apis import MMSegInferencer, inference_model, init_model
from mmseg.apis import show_result_pyplot as mmseg_show_result_pyplot
from mmseg.structures import SegDataSample
from untrained import QUICKSTARTS, save_untrained, small_test_config

from mmaffseg.apis import show_result_pyplot

pytestmark = pytest.mark.usefixtures('one_thread')

HW = (64, 128)
#: network input size where a family needs its own (CPNet's context prior fixes its input size)
INPUT_HW = {'cpnet': (128, 256)}
#: families whose prediction is not a semantic label map
INSTANCES = 'instance-embedding'
EMBEDDING = 'semantic-features'


@pytest.fixture(scope='module')
def images(tmp_path_factory, tiny_synthetic_root):
    """Two 64x128 street-scene images in a folder of their own."""
    folder = tmp_path_factory.mktemp('images')
    val = osp.join(tiny_synthetic_root, 'leftImg8bit', 'val')
    paths = sorted(osp.join(d, f) for d, _, files in os.walk(val) for f in files)[:2]
    out = []
    for i, path in enumerate(paths):
        dst = str(folder / f'street_{i}.png')
        mmcv.imwrite(mmcv.imread(path), dst)
        out.append(dst)
    return str(folder), out


def _check_prediction(family: str, result: SegDataSample, num_classes: int) -> None:
    if family == INSTANCES:
        masks = result.pred_instances.masks
        assert masks.ndim == 3 and tuple(masks.shape[1:]) == HW
        assert len(result.pred_instances.scores) == masks.shape[0]
        assert tuple(result.pred_instance_map.shape) == HW
    elif family == EMBEDDING:
        assert 'pred_sem_seg' not in result
        assert tuple(result.seg_logits.shape) == HW and result.seg_logits.data.shape[0] >= 2
    else:
        pred = result.pred_sem_seg.data
        assert tuple(pred.shape[-2:]) == HW
        assert int(pred.min()) >= 0 and int(pred.max()) < num_classes


@pytest.mark.parametrize('family', sorted(QUICKSTARTS))
def test_mmseg_inference_apis(family, images, tmp_path):
    cfg = small_test_config(QUICKSTARTS[family], INPUT_HW.get(family, HW))
    ckpt = save_untrained(cfg, str(tmp_path / 'untrained.pth'))
    folder, paths = images

    # init_model + inference_model on a file and on an array (mmseg's apis)
    model = init_model(cfg, ckpt, device='cpu')
    classes = model.dataset_meta['classes']
    result = inference_model(model, paths[0])
    _check_prediction(family, result, len(classes))
    results = inference_model(model, [mmcv.imread(p) for p in paths])
    assert len(results) == 2
    for r in results:
        _check_prediction(family, r, len(classes))

    # show_result_pyplot: mmseg's for semantic label maps, mmaffseg's (same arguments) for all
    out_file = str(tmp_path / 'painted.png')
    picture = show_result_pyplot(model, paths[0], result, show=False, out_file=out_file)
    assert picture.shape == (*HW, 3) and osp.isfile(out_file)
    if family not in (INSTANCES, EMBEDDING):
        mmseg_picture = mmseg_show_result_pyplot(model, paths[0], result, show=False,
                                                 out_file=str(tmp_path / 'mmseg.png'))
        np.testing.assert_array_equal(mmseg_picture, picture)

    # MMSegInferencer on the config and checkpoint, on a folder, painting every image
    inferencer = MMSegInferencer(model=cfg, weights=ckpt, device='cpu')
    out_dir = str(tmp_path / 'inferencer')
    if family in (INSTANCES, EMBEDDING):
        # mmseg's inferencer turns only label maps (or depth) into arrays: take the samples
        outputs = inferencer(folder, out_dir=out_dir, return_datasamples=True)
        assert len(outputs) == 2
        for r in outputs:
            _check_prediction(family, r, len(classes))
    else:
        outputs = inferencer(folder, out_dir=out_dir)
        assert [p.shape for p in outputs['predictions']] == [HW, HW]
        assert len(os.listdir(osp.join(out_dir, 'pred'))) == 2
    assert sorted(os.listdir(osp.join(out_dir, 'vis'))) == ['street_0.png', 'street_1.png']


def test_affinitynet_inference_says_what_to_do_instead(images, tmp_path):
    """AffinityNet predicts pair affinities, not labels: a clear error, not a wrong map."""
    cfg = small_test_config('configs/psa/psa-affinitynet_r18-d8-slim_quickstart_synthetic-wsss-'
                            '128x256.py', HW)
    model = init_model(cfg, save_untrained(cfg, str(tmp_path / 'aff.pth')), device='cpu')
    with pytest.raises(NotImplementedError, match='predict_affinity'):
        inference_model(model, images[1][0])
