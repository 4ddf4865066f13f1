"""The deterministic safety stages: unit cases and a property over arbitrary input sequences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.safety import SafetyFilter, SafetyLimits, Stage

N = 3
LIMITS = SafetyLimits(
    q_min=np.array([-1.0, -2.0, 0.1]),
    q_max=np.array([1.0, 0.5, 3.0]),
    v_max=np.array([2.0, 2.0, 3.0]),
    tick_period=0.01,
    policy_period=0.04,
)


def fresh(q0: np.ndarray | None = None) -> SafetyFilter:
    f = SafetyFilter(LIMITS)
    f.reset(np.full(N, 0.2) if q0 is None else q0)
    return f


def test_small_in_range_command_passes_untouched() -> None:
    f = fresh()
    cmd = np.array([0.21, 0.19, 0.2])
    out, stages = f(cmd, np.full(N, 0.2), command_age=0.0)
    assert stages == Stage.NONE
    np.testing.assert_array_equal(out, cmd)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_command_holds_last_safe_command(bad: float) -> None:
    f = fresh()
    first, _ = f(np.array([0.21, 0.19, 0.2]), np.full(N, 0.2), 0.0)
    out, stages = f(np.array([0.3, bad, 0.2]), np.full(N, 0.2), 0.0)
    assert Stage.INPUT_GUARD in stages
    np.testing.assert_array_equal(out, first)


def test_nan_sensor_holds_and_wrong_size_command_is_rejected() -> None:
    f = fresh()
    held, _ = f(np.array([0.22, 0.2, 0.2]), np.full(N, 0.2), 0.0)
    out, stages = f(np.array([0.5, 0.5, 0.5]), np.array([0.2, np.nan, 0.2]), 0.0)
    assert Stage.INPUT_GUARD in stages
    np.testing.assert_array_equal(out, held)
    out, stages = f(np.zeros(N + 1), np.full(N, 0.2), 0.0)
    assert Stage.INPUT_GUARD in stages


def test_stale_command_trips_the_watchdog() -> None:
    f = fresh()
    held, _ = f(np.array([0.22, 0.2, 0.2]), np.full(N, 0.2), 0.0)
    stale_age = LIMITS.watchdog_periods * LIMITS.policy_period + 1e-6
    out, stages = f(np.array([0.25, 0.2, 0.2]), np.full(N, 0.2), stale_age)
    assert stages & Stage.WATCHDOG
    np.testing.assert_array_equal(out, held)
    _, stages = f(None, np.full(N, 0.2), 0.0)
    assert stages & Stage.WATCHDOG


def test_far_command_is_clamped_by_envelope_and_rate_limit() -> None:
    f = fresh()
    out, stages = f(np.array([100.0, -100.0, 100.0]), np.full(N, 0.2), 0.0)
    assert Stage.ENVELOPE in stages and Stage.RATE_LIMIT in stages
    np.testing.assert_allclose(np.abs(out - 0.2), LIMITS.max_step)


def test_reset_refuses_non_finite_state() -> None:
    with pytest.raises(ValueError, match="finite"):
        SafetyFilter(LIMITS).reset(np.array([0.0, np.nan, 0.0]))


wild = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.floats(-1e3, 1e3)
vec = st.lists(wild, min_size=N, max_size=N).map(np.array)
maybe_cmd = st.none() | vec | st.lists(wild, min_size=0, max_size=5).map(np.array)
tick = st.tuples(maybe_cmd, vec, st.floats(0.0, 1.0))


@settings(max_examples=300, deadline=None)
@given(q0=st.lists(st.floats(-5, 5), min_size=N, max_size=N).map(np.array), ticks=st.lists(tick, max_size=40))
def test_every_output_is_inside_the_envelope_and_rate_limit(q0: np.ndarray, ticks: list) -> None:
    f = fresh(q0)
    prev = f.last.copy()
    assert np.all(prev >= LIMITS.q_min) and np.all(prev <= LIMITS.q_max)
    for cmd, q, age in ticks:
        out, _ = f(cmd, q, age)
        assert np.all(np.isfinite(out))
        assert np.all(out >= LIMITS.q_min) and np.all(out <= LIMITS.q_max)
        assert np.all(np.abs(out - prev) <= LIMITS.max_step + 1e-12)
        prev = out
