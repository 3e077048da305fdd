# Copyright (c) mmaffseg contributors. All rights reserved.
"""Temporary files of interrupted atomic writes: removed on SIGTERM/SIGINT, swept by name and
age when a run starts."""
import os
import signal
import subprocess
import sys
import textwrap
import time

from mmaffseg.utils.atomic_io import sweep_stale_temp_files

SLOW_WRITER = textwrap.dedent('''
    import signal, sys, time
    from mmaffseg.utils import atomic_io
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    def slow(f, data):
        f.write(data[:len(data) // 2])
        f.flush()
        print('writing', flush=True)
        time.sleep(60)
    atomic_io._write_all = slow
    if sys.argv[2] == 'handlers':
        atomic_io.remove_temp_files_on_signals()
    atomic_io.atomic_write_bytes(sys.argv[1], b'x' * 1000)
''')


def _interrupt(folder, signum, handlers='handlers'):
    folder.mkdir()
    target = folder / 'iter_2.pth'
    proc = subprocess.Popen([sys.executable, '-c', SLOW_WRITER, str(target), handlers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'writing', proc.stderr.read()
    assert len(list(folder.glob('.iter_2.pth.*.tmp'))) == 1
    proc.send_signal(signum)
    proc.wait(timeout=60)
    return proc.returncode, sorted(p.name for p in folder.iterdir())


def test_sigterm_and_sigint_remove_the_temporary_file(tmp_path):
    code, left = _interrupt(tmp_path / 'term', signal.SIGTERM)
    assert code == -signal.SIGTERM and left == []  # still ends as a SIGTERM does
    code, left = _interrupt(tmp_path / 'int', signal.SIGINT)
    assert code != 0 and left == []  # KeyboardInterrupt
    code, left = _interrupt(tmp_path / 'plain', signal.SIGTERM, handlers='none')
    assert code == -signal.SIGTERM and len(left) == 1  # what the handlers prevent


def test_sweep_removes_only_our_old_temporary_files(tmp_path):
    old = time.time() - 3600
    ours_old = tmp_path / '.iter_2.pth.ab_cd123.tmp'
    ours_new = tmp_path / '.iter_4.pth.x1y2z3w4.tmp'
    foreign = [tmp_path / 'notes.tmp', tmp_path / '.iter_2.pth.tmp', tmp_path / 'iter_2.pth']
    for path in [ours_old, ours_new] + foreign:
        path.write_bytes(b'x')
        os.utime(path, (old, old))
    os.utime(ours_new, None)  # being written now
    (tmp_path / '.sub.abcdefgh.tmp').mkdir()  # not a file
    assert sweep_stale_temp_files(str(tmp_path)) == [str(ours_old)]
    assert not ours_old.exists() and ours_new.exists()
    assert all(p.exists() for p in foreign)
    assert sweep_stale_temp_files(str(tmp_path / 'missing')) == []
