"""Process setup for a fast control loop in Python (the 1 kHz safety loop).

``realtime_setup()`` once, after everything is loaded and before the loop: the objects that
exist then (modules, models, buffers) move out of the garbage collector's reach
(``gc.freeze``), so a collection during the loop only scans what the loop itself allocated
(a few short-lived arrays per tick) instead of the whole heap, which takes milliseconds and
would cost a run of missed ticks every few seconds. Collection stays on: reference cycles
made later are still reclaimed.

With ``fifo_priority`` the process also asks for the ``SCHED_FIFO`` real-time policy (as
``ros2_control`` does for its control thread): on a loaded machine a waking tick then
preempts ordinary processes instead of waiting its turn. It needs root or CAP_SYS_NICE;
without them it says so and carries on with the normal policy.
"""

from __future__ import annotations

import gc
import os
import sys


def realtime_setup(fifo_priority: int | None = None) -> bool:
    """Collect once, then freeze every object that exists now out of later collections; with
    ``fifo_priority`` (1-99) also switch this process to ``SCHED_FIFO``. Returns whether the
    real-time policy is on."""
    gc.collect()
    gc.freeze()
    if fifo_priority is None:
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo_priority))
    except (PermissionError, OSError, AttributeError) as e:
        print(f"realtime_setup: SCHED_FIFO {fifo_priority} refused ({e}); normal scheduling", file=sys.stderr)
        return False
    return True
