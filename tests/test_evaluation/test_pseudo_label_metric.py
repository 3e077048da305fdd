# Copyright (c) mmaffseg contributors. All rights reserved.
"""PseudoLabelMetric against hand-computed IoUs; Table 1 formatting."""
import numpy as np
import pytest

from mmaffseg.evaluation.pseudo_label_metric import PseudoLabelMetric, format_table1, label_areas

GT1 = np.array([[0, 0, 1, 1],
                [0, 0, 1, 255]])
GT2 = np.array([[2, 2, 0, 0]])


def metric():
    m = PseudoLabelMetric()
    m.dataset_meta = dict(classes=('background', 'cat', 'dog', 'cow'))
    return m


def test_label_areas_by_hand():
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 0, 2]])  # the last pixel is ignored in the ground truth
    inter, union, pred_area, label_area = label_areas(pred, GT1, 4)
    np.testing.assert_array_equal(inter, [3, 2, 0, 0])
    np.testing.assert_array_equal(pred_area, [4, 3, 0, 0])
    np.testing.assert_array_equal(label_area, [4, 3, 0, 0])
    np.testing.assert_array_equal(union, [5, 4, 0, 0])
    with pytest.raises(ValueError, match='same size'):
        label_areas(pred[:, :3], GT1, 4)


def test_miou_over_images_by_hand():
    m = metric()
    cam1 = np.array([[0, 1, 1, 1], [0, 0, 0, 2]])
    cam2 = np.array([[2, 0, 0, 0]])
    rw1 = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    rw2 = np.array([[2, 2, 0, 3]])
    m.process(None, [dict(gt=GT1, preds=dict(cam=cam1, rw=rw1)),
                     dict(gt=GT2, preds=dict(cam=cam2, rw=rw2))])
    scores = m.compute_metrics(m.results)
    # CAM, summed over both images: background I 3+2=5, U 5+3=8; cat I 2 U 4; dog I 1 U 2;
    # cow never predicted nor present (NaN, left out of the mean)
    cam = np.mean([5 / 8, 2 / 4, 1 / 2]) * 100
    # RW: background I 4+1=5, U 4+2=6; cat I 3 U 3; dog I 2 U 2; cow I 0 U 1 (predicted only)
    rw = np.mean([5 / 6, 1, 1, 0]) * 100
    assert scores['CAM'] == pytest.approx(round(cam, 2))
    assert scores['CAM + RW'] == pytest.approx(round(rw, 2))
    assert 'CAM + RW + dCRF' not in scores and scores['num_images'] == 2
    assert list(scores)[:2] == ['CAM', 'CAM + RW']  # Table 1 order


def test_empty_and_meta_errors():
    assert metric().compute_metrics([]) == {}
    m = PseudoLabelMetric()
    with pytest.raises(ValueError, match='dataset_meta'):
        m.process(None, [dict(gt=GT2, preds=dict(cam=GT2))])


def test_table1_layout():
    table = format_table1({'CAM + RW': 58.1, 'CAM': 48.0, 'CAM + RW + dCRF': 59.7}, 1464)
    lines = table.splitlines()
    assert lines[0] == 'Pseudo-label accuracy (PSA Table 1 layout), 1464 images'
    assert lines[2:] == ['| Method | mIoU (%) |', '|---|---|', '| CAM | 48.00 |',
                         '| CAM + RW | 58.10 |', '| CAM + RW + dCRF | 59.70 |']
