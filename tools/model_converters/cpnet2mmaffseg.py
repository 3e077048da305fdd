# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert an official Context Prior checkpoint (yu-changqian/ContextPrior) to mmaffseg keys.

Usage::

    python tools/model_converters/cpnet2mmaffseg.py SRC.pth DST.pth [--trust]

The key mapping lives in ``converters/cpnet_converter.py``; the result loads into the
``configs/cpnet`` models.
"""
from converters.checkpoint_conversion import converter_main
from converters.cpnet_converter import convert_official_cpnet

if __name__ == '__main__':
    converter_main(convert_official_cpnet, 'Convert official ContextPrior weights to mmaffseg')
