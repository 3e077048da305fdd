# Copyright (c) mmaffseg contributors. All rights reserved.
"""Benchmarks: mmseg's inference speed test, and one subcommand per mmaffseg target.

    python tools/analysis_tools/benchmark.py CONFIG [CHECKPOINT] [--num-images 50]
        [--warmup 5] [--repeat-times 1] [--device cpu|cuda] [--cfg-options ...]
    python tools/analysis_tools/benchmark.py TARGET [--threads N] [--device D] [--size H W]
        [--repeat N] [--warmup N] [--out FILE] [its options]
    python tools/analysis_tools/benchmark.py TARGET --help

The first form is mmseg's ``benchmark.py`` (its name and arguments). TARGET is one of
``random-walk``, ``cp-loss``, ``dense-crf``, ``dsrl``, ``context-modules``,
``instance-embedding``, ``wsss-pipeline``, ``host-syncs``; each takes the shared options it
uses. The measurements live in the ``benchmarks`` package beside this script (see
``benchmarks/cli.py``), which is tool code and not installed with mmaffseg.
"""
import sys

from benchmarks.cli import main

if __name__ == '__main__':
    sys.exit(main())
