"""Process setup of the fast loop: the heap is frozen out of collections, and the SCHED_FIFO
request reports what the kernel actually granted (in a child process, not the test runner)."""

from __future__ import annotations

import gc
import subprocess
import sys

from deploy.runtime.realtime import realtime_setup

CHILD = """
import os
from deploy.runtime.realtime import realtime_setup
granted = realtime_setup(10)
print(granted, os.sched_getscheduler(0) == os.SCHED_FIFO)
"""


def test_realtime_setup_freezes_the_heap() -> None:
    try:
        assert realtime_setup() is False  # no real-time policy asked for
        assert gc.get_freeze_count() > 1000  # the modules, models, buffers loaded so far
    finally:
        gc.unfreeze()


def test_fifo_request_reports_what_the_kernel_granted() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    granted, is_fifo = out.stdout.split()
    assert granted == is_fifo  # True True as root; False False (with a message) otherwise
    if granted == "False":
        assert "SCHED_FIFO 10 refused" in out.stderr
