# Copyright (c) mmaffseg contributors. All rights reserved.
"""The hostile-input audit's verdict on torchrun's closing failure report (torch's own text)."""
import sys

import pytest
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from mmaffseg.cli.errors import exit_with_error

MESSAGE = 'the config uses synchronised BatchNorm (model.backbone.norm_cfg), which needs GPUs'


def _torchrun_output(error_file: str) -> str:
    """What torchrun prints last when its worker exited 2, built by torch's own classes."""
    failure = ProcessFailure(local_rank=0, pid=1234, exitcode=2, error_file=error_file)
    report = ChildFailedError(name='tools/train.py', failures={0: failure}).format_msg()
    return (f'train.py: error: {MESSAGE}\n'
            'Traceback (most recent call last):\n'
            '  File "<frozen runpy>", line 198, in _run_module_as_main\n'
            'torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n' + report)


def test_torchrun_root_cause_decides_the_audit_verdict(tmp_path, monkeypatch):
    import hostile_input_audit as audit
    case = audit.Case('config', 'SyncBN under torchrun', [], ['synchronised BatchNorm'])
    # the worker wrote no error file (tools before exit_with_error): torchrun's report only says
    # "To enable traceback see ..."; the message printed above it is not the last word
    missing = str(tmp_path / 'none.json')
    assert audit.classify(case, 1, _torchrun_output(missing)).outcome == 'unclear error'
    # exit_with_error wrote the error file: the report's root cause names the problem
    error_file = tmp_path / 'error.json'
    monkeypatch.setenv('TORCHELASTIC_ERROR_FILE', str(error_file))
    monkeypatch.setattr(sys, 'argv', ['train.py'])
    with pytest.raises(SystemExit):
        exit_with_error(MESSAGE)
    output = _torchrun_output(str(error_file))
    assert f'traceback : train.py: error: {MESSAGE}' in output
    assert audit.classify(case, 1, output).outcome == 'clear error'
