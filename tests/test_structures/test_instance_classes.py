# Copyright (c) mmaffseg contributors. All rights reserved.
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmaffseg.structures.instance_map import instance_classes, stack_instance_maps


def test_instance_classes_majority_vote():
    inst = torch.tensor([[0, 1, 1, 2], [3, 3, 255, 2], [4, 4, 4, 0]])
    sem = torch.tensor([[0, 11, 11, 13], [5, 5, 255, 13], [13, 11, 11, 2]])
    ids, classes = instance_classes(inst, sem, (11, 12, 13))
    assert ids.tolist() == [1, 2, 3, 4]
    # 3 is stuff-labelled (-1); 4 is two thirds person
    assert classes.tolist() == [0, 2, -1, 0]
    ids, classes = instance_classes(torch.zeros(2, 2), torch.zeros(2, 2), (11, ))
    assert ids.numel() == 0 and classes.numel() == 0
    with pytest.raises(ValueError, match='same shape'):
        instance_classes(torch.zeros(2, 2), torch.zeros(2, 3), (11, ))


def test_stack_instance_maps_pads_like_gt_sem_seg():
    samples = []
    for h, w in ((4, 5), (3, 5)):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.zeros(1, 4, 6, dtype=torch.long))
        s.gt_instance_map = PixelData(data=torch.ones(1, h, w, dtype=torch.long))
        samples.append(s)
    out = stack_instance_maps(samples)
    assert out.shape == (2, 4, 6)
    assert (out[:, :, 5] == 255).all() and (out[1, 3] == 255).all()
    assert (out[0, :, :5] == 1).all()
    del samples[0].gt_instance_map
    with pytest.raises(KeyError, match='LoadInstanceMap'):
        stack_instance_maps(samples)
