# Copyright (c) mmaffseg contributors. All rights reserved.
"""What ``tools/analysis_tools/benchmark.py`` measures: one module per target, the harness
(:mod:`.profiling`) and the baselines they compare against (:mod:`.dense_random_walk`).

Tool code, not part of the installed ``mmaffseg`` package: ``benchmark.py`` imports it as
``benchmarks`` (its folder is the first entry of ``sys.path`` when it runs), and the tests put
``tools/analysis_tools`` on the path (``tests/pytest.ini``).
"""
