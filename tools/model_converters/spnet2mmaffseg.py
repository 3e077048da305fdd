# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert an official SPNet checkpoint (houqb/SPNet) to mmaffseg keys.

Usage::

    python tools/model_converters/spnet2mmaffseg.py SRC.pth DST.pth [--trust]

The key mapping lives in ``converters/spnet_converter.py``. A whole SPNet loads into
``configs/spnet`` models with ``backbone.stem_channels=128`` (the official deep stem).
"""
from converters.checkpoint_conversion import converter_main
from converters.spnet_converter import convert_official_spnet

if __name__ == '__main__':
    converter_main(convert_official_spnet, 'Convert official SPNet weights to mmaffseg')
