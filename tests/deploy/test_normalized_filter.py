"""The safety stage for normalized commands (deploy/safety/normalized.py), on dm_control's spec.

Whatever reaches it (float64 extremes, NaN, +-inf, 1e308, -0.0, wrong sizes and dtypes, no
command, stuck, backward and jumping clocks, an e-stop), every emitted command is finite,
inside the task's action bounds and within the rate limit of the one before. The checker
below is written from the raw numbers (the spec's ``max_delta``, the rate in the config, the
loop rate) and shares no code with the stage: not ``NormalizedLimits``, not its ``max_step``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from deploy.safety.config import SafetyConfig
from deploy.safety.engines import limits_for, make_filter
from deploy.safety.filter import SafetyFilter
from deploy.safety.limits import SafetyLimits, Stage
from deploy.safety.normalized import NormalizedFilter, NormalizedLimits
from sim.spec import ActionSpec

DMC = sim.make("dmc").task_spec  # reacher/easy: 2 commands in [-1, 1] at 50 Hz
# the same robot with unequal ranges per command (the stage bounds each one on its own)
HALF = (1.0, 0.5, 2.0)
SPEC = dataclasses.replace(
    DMC,
    joint_names=("a", "b", "c"),
    joint_pos_min=(-math.inf,) * 3,
    joint_pos_max=(math.inf,) * 3,
    joint_vel_max=(math.inf,) * 3,
    action=ActionSpec("normalized", "1", HALF),
)
N = len(HALF)

# --- the contract, from the raw numbers (shares nothing with deploy.safety.normalized) ----------
RATE = 25.0  # half-ranges per second (SafetyConfig.action_rate, passed explicitly below)
TICK_HZ = 200.0  # the loop runs 4x faster than the policy (50 Hz)
POLICY_PERIOD = 1.0 / 50.0
WATCHDOG_AGE, ZERO_AGE = 3 * POLICY_PERIOD, 10 * POLICY_PERIOD
LO = [-h for h in HALF]
HI = list(HALF)
STEP = [RATE * h / TICK_HZ for h in HALF]  # 0.125, 0.0625, 0.25 per tick
TOLERANCE = 1e-12


def assert_safe(out: np.ndarray, prev: list[float], where: object = "") -> None:
    """The contract on one emitted command, element by element in plain Python."""
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (N,), where
    for j, (o, p) in enumerate(zip(out.tolist(), prev, strict=True)):
        assert math.isfinite(o), (where, j, o)
        assert LO[j] <= o <= HI[j], (where, j, o)
        assert abs(o - p) <= STEP[j] + TOLERANCE, (where, j, o, p)


def config(**changes: Any) -> SafetyConfig:
    return SafetyConfig(action_rate=RATE, watchdog_periods=3.0, damp_periods=10.0, **changes)


def stage(spec: Any = SPEC, **changes: Any) -> NormalizedFilter:
    filt = make_filter(limits_for(config(**changes), spec, tick_hz=TICK_HZ))
    assert isinstance(filt, NormalizedFilter)
    filt.reset(np.zeros(spec.n_joints))
    return filt


# --- strategies ----------------------------------------------------------------------------------
EXTREMES = [
    math.nan, -math.nan, math.inf, -math.inf,
    1e308, -1e308, 1.7976931348623157e308, 1e39, -1e39,
    5e-324, -5e-324, 0.0, -0.0, 1.0, -1.0, 2.0, -2.0,
]  # fmt: skip
value = st.one_of(st.sampled_from(EXTREMES), st.floats(-5.0, 5.0), st.floats(allow_nan=True))
command = st.one_of(
    st.none(),
    st.lists(value, min_size=N, max_size=N).map(lambda v: np.array(v, dtype=np.float64)),
    st.lists(value, min_size=0, max_size=N + 2).map(np.array),  # wrong sizes
    st.sampled_from([np.array(["1", "2", "3"]), np.array([1, 2, 3], dtype=np.int64), np.array([True] * N)]),
)
AGES = [0.0, 0.004, 0.019, WATCHDOG_AGE, WATCHDOG_AGE + 1e-6, ZERO_AGE + 1e-6, 1e308, math.inf]
age = st.one_of(st.sampled_from([*AGES, -1e-9, -1.0, -math.inf, math.nan]), st.floats(0.0, 1.0))
tick = st.tuples(command, age, st.sampled_from([False, False, False, False, True]))  # estop


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tick, min_size=1, max_size=60))
def test_every_command_is_finite_bounded_and_rate_limited(ticks: list) -> None:
    filt = stage()
    prev = [0.0] * N
    for i, (cmd, cmd_age, estop) in enumerate(ticks):
        r = filt.tick(cmd, None, cmd_age, estop=estop)
        assert_safe(r.command, prev, i)
        assert isinstance(r.stages, Stage) and Stage.LAST_STAGE not in r.stages, i
        prev = r.command.tolist()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_command_holds_the_last_safe_one(bad: float) -> None:
    filt = stage()
    first = filt.tick(np.array([0.05, -0.05, 0.1]), None, 0.0)
    assert first.stages == Stage.NONE
    r = filt.tick(np.array([0.1, bad, 0.1]), None, 0.0)
    assert r.stages == Stage.INPUT_GUARD
    np.testing.assert_array_equal(r.command, first.command)


def test_malformed_commands_hold() -> None:
    filt = stage()
    for cmd in (np.zeros(N + 1), np.zeros(0), np.array(["a", "b", "c"]), np.array([True, False, True])):
        r = filt.tick(cmd, None, 0.0)
        assert r.stages == Stage.INPUT_GUARD
        np.testing.assert_array_equal(r.command, np.zeros(N))


def test_absurd_finite_commands_are_clipped_or_refused_never_emitted() -> None:
    filt = stage()
    r = filt.tick(np.array([1e308, -1e39, 5.0]), None, 0.0)  # clipped, then rate-limited
    assert r.stages == Stage.ENVELOPE | Stage.RATE_LIMIT
    np.testing.assert_array_equal(r.command, [STEP[0], -STEP[1], STEP[2]])
    held = filt.tick(np.array([1.7976931348623157e308, 1.7976931348623157e308, 0.0]), None, 0.0)
    assert held.stages == Stage.INPUT_GUARD  # their sum overflows: refused like an infinity
    np.testing.assert_array_equal(held.command, r.command)
    zero = filt.tick(np.array([-0.0, -0.0, -0.0]), None, 0.0)
    assert_safe(zero.command, r.command.tolist())


def test_a_step_command_ramps_at_the_rate_limit_then_passes() -> None:
    filt = stage()
    target = np.array([1.0, 0.5, -2.0])  # the corners of the range
    prev, ramp = [0.0] * N, 0
    for i in range(40):
        r = filt.tick(target, None, 0.0)
        assert_safe(r.command, prev, i)
        ramp += Stage.RATE_LIMIT in r.stages
        prev = r.command.tolist()
    np.testing.assert_array_equal(r.command, target)
    assert r.stages == Stage.NONE
    assert ramp == max(math.ceil(abs(t) / s) for t, s in zip(target, STEP, strict=True)) - 1


def test_a_stuck_policy_clock_holds_then_goes_to_zero() -> None:
    """The command is never renewed (its stamp is stuck): its age keeps growing."""
    filt = stage()
    cmd = np.array([0.9, -0.4, 1.5])
    prev, held = [0.0] * N, None
    for i in range(400):
        cmd_age = i / TICK_HZ
        r = filt.tick(cmd, None, cmd_age)
        assert_safe(r.command, prev, i)
        if cmd_age <= WATCHDOG_AGE:
            assert Stage.WATCHDOG not in r.stages, i
        elif cmd_age <= ZERO_AGE:
            assert r.stages == Stage.WATCHDOG, i
            held = prev if held is None else held
            assert r.command.tolist() == held, i  # held exactly
        else:
            assert Stage.WATCHDOG in r.stages and Stage.DAMP in r.stages, i
        prev = r.command.tolist()
    assert held is not None and any(h != 0.0 for h in held)
    assert prev == [0.0] * N  # rate-limited down to no actuation


@pytest.mark.parametrize("bad", [-1e-9, -1.0, -math.inf, math.nan])
def test_a_backward_or_nan_command_age_holds(bad: float) -> None:
    filt = stage()
    first = filt.tick(np.array([0.1, 0.1, 0.1]), None, 0.0)
    r = filt.tick(np.array([0.2, 0.2, 0.2]), None, bad)
    assert r.stages == Stage.WATCHDOG
    np.testing.assert_array_equal(r.command, first.command)


def test_no_command_yet_holds_zero_and_an_estop_goes_to_zero() -> None:
    filt = stage()
    r = filt.tick(None, None, math.inf)
    assert r.stages == Stage.WATCHDOG and r.command.tolist() == [0.0] * N
    for _ in range(20):
        filt.tick(np.array([1.0, 0.5, 2.0]), None, 0.0)
    prev = filt.last.tolist()
    for i in range(20):
        r = filt.tick(np.array([1.0, 0.5, 2.0]), None, 0.0, estop=True)
        assert Stage.ESTOP in r.stages, i
        assert_safe(r.command, prev, i)
        prev = r.command.tolist()
    assert prev == [0.0] * N


def test_warm_leaves_the_stage_as_it_was() -> None:
    filt = stage()
    filt.tick(np.array([0.3, 0.2, 0.1]), None, 0.0)
    before = filt.last.copy()
    filt.warm(np.array([1.0, 1.0, 1.0]), None, 0.0)
    np.testing.assert_array_equal(filt.last, before)


def test_the_limits_are_the_contracts() -> None:
    lim = limits_for(config(), SPEC, tick_hz=TICK_HZ)
    assert isinstance(lim, NormalizedLimits)
    np.testing.assert_array_equal(lim.low, LO)
    np.testing.assert_array_equal(lim.high, HI)
    np.testing.assert_allclose(lim.max_step, STEP, rtol=1e-15)
    assert lim.watchdog_age == pytest.approx(WATCHDOG_AGE) and lim.zero_age == pytest.approx(ZERO_AGE)
    dmc = limits_for(SafetyConfig(), DMC)  # the shipped default at the control rate: 0.5 per tick
    np.testing.assert_allclose(dmc.max_step, [0.5, 0.5])


def test_it_is_chosen_by_the_action_kind_and_the_joint_filter_is_unchanged() -> None:
    reach = sim.make("reach").task_spec
    lim = limits_for(SafetyConfig(), reach)
    assert isinstance(lim, SafetyLimits)
    assert not isinstance(make_filter(lim), NormalizedFilter)
    assert type(make_filter(lim, engine="python")) is SafetyFilter
    assert isinstance(make_filter(limits_for(SafetyConfig(), DMC)), NormalizedFilter)


def test_what_it_refuses() -> None:
    lim = limits_for(SafetyConfig(), DMC)
    with pytest.raises(ValueError, match="critic is not supported"):
        make_filter(lim, critic=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no native engine"):
        make_filter(lim, engine="native")
    with pytest.raises(ValueError, match="no end effector"):
        limits_for(SafetyConfig(workspace_low=(0, 0, 0), workspace_high=(1, 1, 1)), DMC)
    with pytest.raises(ValueError, match="action_rate"):
        SafetyConfig(action_rate=0.0)
    with pytest.raises(ValueError, match="action kind"):
        NormalizedLimits.from_spec(sim.make("reach").task_spec, rate=1.0)
