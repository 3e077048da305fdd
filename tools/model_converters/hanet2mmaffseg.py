# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert an official HANet checkpoint (shachoi/HANet) to mmaffseg keys.

Usage::

    python tools/model_converters/hanet2mmaffseg.py SRC.pth DST.pth [--trust]

The key mapping lives in ``converters/hanet_converter.py``. Converted DeepLabV3+
R-101 weights load into ``configs/hanet/hanet_r101-d8_4xb2-80k_cityscapes-512x1024.py`` with
``model.backbone.stem_channels=128`` (the official deep stem ends with 128 channels).
"""
from converters.checkpoint_conversion import converter_main
from converters.hanet_converter import convert_official_hanet

if __name__ == '__main__':
    converter_main(convert_official_hanet, 'Convert official HANet weights to mmaffseg')
