# Copyright (c) mmaffseg contributors. All rights reserved.
"""One writer per folder: a second process is refused at once, a dead holder never blocks."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from mmaffseg.utils.config_errors import OutputDirError
from mmaffseg.utils.folder_lock import FolderInUseError, FolderLock

HOLD = textwrap.dedent('''
    import sys, time
    from mmaffseg.utils.folder_lock import FolderLock
    FolderLock(sys.argv[1], '--work-dir').acquire()
    print('held', flush=True)
    time.sleep(60)
''')


def _holder(folder):
    proc = subprocess.Popen([sys.executable, '-c', HOLD, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == 'held'
    return proc


def test_second_process_is_refused_naming_the_holder(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(FolderInUseError) as info:
            FolderLock(str(tmp_path), '--work-dir').acquire()
        assert isinstance(info.value, OutputDirError)
        message = info.value.strerror
        assert f'pid {proc.pid}' in message and '--work-dir' in message
        assert str(tmp_path) in message
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_process_does_not_block(tmp_path):
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with FolderLock(str(tmp_path), '--work-dir') as lock:
        assert lock.held
    assert not lock.held


def test_released_lock_can_be_taken_again_in_process(tmp_path):
    lock = FolderLock(str(tmp_path / 'new'), '--out-dir').acquire()
    assert lock.acquire() is lock  # re-entrant on the same object
    with pytest.raises(FolderInUseError):
        FolderLock(str(tmp_path / 'new'), '--out-dir').acquire()  # flock is per open file
    lock.release()
    FolderLock(str(tmp_path / 'new'), '--out-dir').acquire().release()


def test_folder_that_cannot_be_created_is_an_output_dir_error(tmp_path):
    """A folder under a regular file was a raw NotADirectoryError traceback from the tools."""
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    with pytest.raises(OutputDirError) as info:
        FolderLock(str(blocker / 'out'), '--work-dir').acquire()
    assert not isinstance(info.value, FolderInUseError)
    assert f'--work-dir: the folder {blocker / "out"} cannot be created' in info.value.strerror
