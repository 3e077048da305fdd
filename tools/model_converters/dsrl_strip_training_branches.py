# Copyright (c) mmaffseg contributors. All rights reserved.
"""Drop DSRL's training-only weights (SISR decoder, FA feature transform) from a checkpoint.

Usage::

    python tools/model_converters/dsrl_strip_training_branches.py SRC.pth DST.pth

Checkpoints written by ``tools/train.py`` load safely (docs/checkpoints.md). The result loads
strictly into the same DSRL config with ``model.sr_decoder=None``, which holds only the test
path (backbone, heads, SSSR); the logic is
:func:`converters.dsrl_converter.strip_training_branches`.
"""
from converters.checkpoint_conversion import converter_main
from converters.dsrl_converter import strip_training_branches

if __name__ == '__main__':
    converter_main(strip_training_branches, 'Strip DSRL training-only branches')
