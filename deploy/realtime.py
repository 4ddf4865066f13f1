"""Process setup for a fast control loop in Python (the 1 kHz safety loop).

``realtime_setup()`` once, after everything is loaded and before the loop: the objects that
exist then (modules, models, buffers) move out of the garbage collector's reach
(``gc.freeze``), so a collection during the loop only scans what the loop itself allocated
(a few short-lived arrays per tick) instead of the whole heap, which takes milliseconds and
would cost a run of missed ticks every few seconds. Collection stays on: reference cycles
made later are still reclaimed.
"""

from __future__ import annotations

import gc


def realtime_setup() -> None:
    """Collect once, then freeze every object that exists now out of later collections."""
    gc.collect()
    gc.freeze()
