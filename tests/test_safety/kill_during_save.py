"""Run a Python tool and SIGKILL it halfway through writing a file whose path contains NAME: a crash mid-save.

    python tests/test_safety/kill_during_save.py NAME tools/train.py ARGS...

Only writes of at least 64 KiB are cut (a checkpoint, not its small checksum or pointer files).
"""
import builtins
import os
import runpy
import signal
import sys

MIN_BYTES = 64 * 1024
target = sys.argv[1]
real_open = builtins.open


class DiesMidWrite:
    def __init__(self, file) -> None:
        self._file = file

    def write(self, data):
        if len(data) >= MIN_BYTES:
            self._file.write(data[:len(data) // 2])
            self._file.flush()
            os.fsync(self._file.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        return self._file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self._file.__exit__(*exc_info)

    def __getattr__(self, name):
        return getattr(self._file, name)


def killing_open(file, mode='r', *args, **kwargs):
    opened = real_open(file, mode, *args, **kwargs)
    path = os.readlink(f'/proc/self/fd/{file}') if isinstance(file, int) else os.fsdecode(file)
    return DiesMidWrite(opened) if 'w' in mode and target in path else opened


builtins.open = killing_open
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')
