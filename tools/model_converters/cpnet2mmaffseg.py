# Copyright (c) mmaffseg contributors. All rights reserved.
"""Convert an official Context Prior checkpoint (yu-changqian/ContextPrior) to mmaffseg keys.

Usage::

    python tools/model_converters/cpnet2mmaffseg.py SRC.pth DST.pth [--trust]

The key mapping lives in :mod:`mmaffseg.models.utils.cpnet_converter`; the result loads into the
``configs/cpnet`` models.
"""
from mmaffseg.models.utils.checkpoint_conversion import converter_main
from mmaffseg.models.utils.cpnet_converter import convert_official_cpnet

if __name__ == '__main__':
    converter_main(convert_official_cpnet, 'Convert official ContextPrior weights to mmaffseg')
