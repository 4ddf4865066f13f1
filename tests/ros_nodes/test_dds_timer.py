"""The Cyclone DDS port's timers: ``prepare`` runs once before each deadline, ahead of the tick."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("cyclonedds")

from ros_nodes.dds import DdsPort
from ros_nodes.params import ParameterStore
from tests.ros_nodes.domains import fresh_domain


def test_prepare_runs_once_before_each_tick() -> None:
    port = DdsPort("timer_test", ParameterStore("timer_test"), domain_id=fresh_domain(), spin_us=20_000.0)
    events: list[tuple[str, int]] = []
    timer = port.timer(
        0.01,
        lambda: events.append(("tick", time.monotonic_ns())),
        prepare=lambda: events.append(("prepare", time.monotonic_ns())),
        prepare_s=0.001,
    )
    port.spin_for(0.3)  # spinning all along (spin_us > period): no oversleeping
    kinds = [k for k, _ in events]
    assert timer.ticks >= 20 and kinds.count("tick") == timer.ticks
    pairs = [(events[i - 1], events[i]) for i in range(1, len(events)) if kinds[i] == "tick"]
    prepared = [(p[1], t[1]) for p, t in pairs if p[0] == "prepare"]
    # a loop that wakes up (or is scheduled) after the prepare time skips it rather than delay
    # the tick; on an idle machine every tick is prepared, on a loaded one fewer
    assert prepared, "no tick was prepared"
    assert "prepare,prepare" not in ",".join(kinds), "one prepare per deadline"
    assert all(t >= p for p, t in prepared)
