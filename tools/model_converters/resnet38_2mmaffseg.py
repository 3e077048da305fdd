# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert an official PSA ResNet-38 checkpoint (jiwoon-ahn/psa) to mmaffseg keys.

Usage::

    python tools/model_converters/resnet38_2mmaffseg.py SRC.pth DST.pth [--trust]

SRC is a PyTorch state dict of the reference code: the ImageNet backbone (made from the MXNet
``.params`` file by the reference's ``convert_mxnet_to_torch``), ``res38_cls.pth`` (CAM network)
or the trained AffinityNet. The key mapping lives in ``converters/psa_converter.py``;
the result loads into ``CAMClassifier`` / ``AffinityNet`` models with a ``ResNet38`` backbone.
"""
from converters.checkpoint_conversion import converter_main
from converters.psa_converter import convert_official_psa

if __name__ == '__main__':
    converter_main(convert_official_psa, 'Convert official PSA ResNet-38 weights to mmaffseg')
