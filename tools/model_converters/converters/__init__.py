# Copyright (c) mmaffseg contributors. All rights reserved.
"""The key mappings behind ``tools/model_converters/*.py``: official checkpoints -> mmaffseg.

Tool code, not part of the installed ``mmaffseg`` package: the scripts beside this folder import
it as ``converters`` (their folder is the first entry of ``sys.path`` when run), and the tests
put ``tools/model_converters`` on the path (``tests/pytest.ini``).
"""
