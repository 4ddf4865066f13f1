"""The deterministic safety stages: unit cases and a property over arbitrary input sequences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from deploy.safety.engines import make_filter
from deploy.safety.filter import SafetyLimits, Stage
from deploy.safety.interface import FilterEngine
from deploy.safety.kinematics import SerialChain, chain_from_mujoco
from sim.robots.arm7 import constants as c
from sim.robots.arm7.physics import Arm7Physics

N = 3
LIMITS = SafetyLimits(
    q_min=np.array([-1.0, -2.0, 0.1]),
    q_max=np.array([1.0, 0.5, 3.0]),
    v_max=np.array([2.0, 2.0, 3.0]),
    tick_period=0.01,
    policy_period=0.04,
)


def fresh(q0: np.ndarray | None = None) -> FilterEngine:
    f = make_filter(LIMITS)
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
        make_filter(LIMITS).reset(np.array([0.0, np.nan, 0.0]))


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


# --- the stages added with the critic: damp, e-stop, CBF, sensors, interpolation, workspace ---


def test_watchdog_holds_then_damps_toward_the_measured_position() -> None:
    f = fresh()
    held, _ = f(np.array([0.25, 0.2, 0.2]), np.full(N, 0.2), 0.0)
    hold_age = (LIMITS.watchdog_periods + 1) * LIMITS.policy_period
    out, stages = f(np.array([0.9, 0.2, 0.2]), np.full(N, 0.2), hold_age)
    assert stages == Stage.WATCHDOG
    np.testing.assert_array_equal(out, held)
    damp_age = (LIMITS.damp_periods + 1) * LIMITS.policy_period
    q = np.array([0.2, 0.2, 0.2])
    for _ in range(5):
        out, stages = f(np.array([0.9, 0.2, 0.2]), q, damp_age)
        assert Stage.DAMP in stages and Stage.WATCHDOG in stages
    np.testing.assert_allclose(out, q)  # the command now sits on the measured position


def test_estop_overrides_a_live_command_and_stops_where_the_arm_is() -> None:
    f = fresh()
    q = np.array([0.3, 0.1, 0.5])
    for _ in range(40):
        r = f.tick(np.array([0.9, -0.9, 2.0]), q, 0.0, estop=True)
        assert Stage.ESTOP in r.stages
    np.testing.assert_allclose(r.command, q)
    cmd = np.array([0.9, -0.9, 2.0])
    r = f.tick(cmd, q, 0.0)  # released: toward the policy's command again
    assert Stage.ESTOP not in r.stages and np.all(np.sign(r.command - q) == np.sign(cmd - q))


@pytest.mark.parametrize("engine", ["python", "native"])
def test_estop_holds_where_the_arm_was_when_it_engaged(engine: str) -> None:
    """The e-stop's target is latched at engagement: an arm that sags afterwards (a position
    loop without gravity compensation) is commanded back (as far as the velocity envelope around
    the measured position allows), not followed down; a release and a second e-stop latch anew."""
    f = make_filter(LIMITS, engine=engine)
    q0 = np.array([0.3, 0.1, 0.5])
    f.reset(q0)
    for k in range(60):
        sag = q0 - np.array([0.0, 0.0005, 0.0]) * k  # joint 2 droops 0.5 mrad per tick (0.03 rad in all)
        r = f.tick(np.array([0.9, -0.9, 2.0]), sag, 0.0, estop=True)
    np.testing.assert_allclose(r.command, q0, atol=1e-12)
    f.tick(None, q0, 0.0)  # released (no policy command: the watchdog holds)
    q1 = np.array([0.2, 0.0, 0.6])
    r = f.tick(None, q1, 0.0, estop=True)
    for _ in range(40):
        r = f.tick(None, q1 - 0.01, 0.0, estop=True)
    np.testing.assert_allclose(r.command, q1, atol=1e-12)


def test_cbf_envelope_slows_the_approach_to_a_limit() -> None:
    lim = SafetyLimits(**{**vars(LIMITS), "cbf_alpha": 5.0, "tick_period": 1.0})  # no rate limit
    f = make_filter(lim)
    q = np.array([0.9, 0.2, 0.2])  # joint 0 is 0.1 rad from q_max = 1.0
    f.reset(q)
    out, stages = f(np.array([5.0, 0.2, 0.2]), q, 0.0)
    k = 5.0 * lim.policy_period
    assert Stage.ENVELOPE in stages
    assert out[0] == pytest.approx(q[0] + k * (lim.q_max[0] - q[0]))
    beyond = np.array([1.05, 0.2, 0.2])  # measured beyond the margin: the command pulls back
    out, _ = f(np.array([5.0, 0.2, 0.2]), beyond, 0.0)
    assert out[0] <= lim.q_max[0]


def test_stale_missing_and_frozen_sensors_hold() -> None:
    lim = SafetyLimits(**{**vars(LIMITS), "frozen_ticks": 3, "frozen_tolerance": 0.01})
    f = make_filter(lim)
    f.reset(np.full(N, 0.2))
    first = f.tick(np.array([0.25, 0.2, 0.2]), np.full(N, 0.2), 0.0).command
    r = f.tick(np.array([0.3, 0.2, 0.2]), np.full(N, 0.2), 0.0, state_age=lim.sensor_timeout * 2)
    assert Stage.INPUT_GUARD in r.stages
    np.testing.assert_array_equal(r.command, first)
    r = f.tick(np.array([0.3, 0.2, 0.2]), None, 0.0)
    assert Stage.INPUT_GUARD in r.stages
    stuck = np.array([0.1, 0.2, 0.2])  # bit-identical readings while the command is 0.15 rad away
    stages = [f.tick(np.array([0.3, 0.2, 0.2]), stuck.copy(), 0.0).stages for _ in range(6)]
    assert Stage.INPUT_GUARD not in stages[0] and Stage.INPUT_GUARD in stages[-1]


def test_interpolation_ramps_between_policy_commands() -> None:
    lim = SafetyLimits(**{**vars(LIMITS), "interpolate": True, "tick_period": 0.01})
    f = make_filter(lim)
    f.reset(np.full(N, 0.2))
    target = np.array([0.24, 0.2, 0.2])
    outs = [f.tick(target, np.full(N, 0.2), age).command[0] for age in (0.0, 0.01, 0.02, 0.03)]
    np.testing.assert_allclose(outs, [0.2, 0.21, 0.22, 0.23])


def test_tick_report_without_a_critic() -> None:
    r = fresh().tick(np.array([0.21, 0.19, 0.2]), np.full(N, 0.2), 0.0)
    assert np.isnan(r.risk) and r.choice == -1 and not r.critic_ran and r.stages == Stage.NONE


def test_limits_refuse_inconsistent_settings() -> None:
    with pytest.raises(ValueError, match="damp_periods"):
        SafetyLimits(**{**vars(LIMITS), "damp_periods": 1.0})
    with pytest.raises(ValueError, match="chain"):
        SafetyLimits(**{**vars(LIMITS), "workspace_low": (0, 0, 0), "workspace_high": (1, 1, 1)})


# --- the workspace box and Cartesian rate limit on the real arm7 kinematics ---

ARM = SafetyLimits.from_spec(
    sim.make("reach").task_spec,
    tick_hz=500,
    workspace_low=(0.1, -0.6, 0.02),
    workspace_high=(0.9, 0.6, 0.9),
    ee_speed_max=0.8,
    chain=chain_from_mujoco(Arm7Physics().model, c.JOINT_NAMES, c.EE_SITE),
)


def test_chain_matches_mujoco_forward_kinematics() -> None:
    physics = Arm7Physics()
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(physics.pos_min, physics.pos_max)
        physics.set_joint_state(q, np.zeros(7))
        np.testing.assert_allclose(ARM.chain.position(q), physics.ee_pos(), atol=1e-9)
        np.testing.assert_allclose(ARM.chain.positions(q[None])[0], physics.ee_pos(), atol=1e-9)
    again = SerialChain.from_dict(ARM.chain.to_dict())
    np.testing.assert_allclose(again.position(q), physics.ee_pos(), atol=1e-9)


def test_workspace_stops_the_hand_above_the_table() -> None:
    f = make_filter(ARM)
    q = np.asarray(c.READY_LOW)  # hand ~0.15 m over the table
    f.reset(q)
    down = q + np.array([0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0])  # shoulder forward: hand into the table
    seen = Stage.NONE
    for _ in range(400):
        r = f.tick(down, f.last, 0.0)  # an ideal robot: it is where it was commanded
        seen |= r.stages
        assert ARM.chain.position(r.command)[2] >= 0.02 - 1e-9
    assert Stage.WORKSPACE in seen


def workspace_excess(cmd: np.ndarray) -> float:
    p = np.asarray(ARM.chain.position(cmd))
    return float(
        np.sum(np.maximum(np.asarray(ARM.workspace_low) - p, 0) + np.maximum(p - ARM.workspace_high, 0))
    )


arm_vec = st.lists(st.floats(-4.0, 4.0), min_size=7, max_size=7).map(np.array)
arm_cmd = st.none() | arm_vec | st.lists(wild, min_size=7, max_size=7).map(np.array)
arm_tick = st.tuples(arm_cmd, arm_vec, st.floats(0.0, 0.5), st.booleans())


@settings(max_examples=100, deadline=None)
@given(ticks=st.lists(arm_tick, min_size=1, max_size=30))
def test_every_output_stays_in_the_box_and_cartesian_rate(ticks: list) -> None:
    f = make_filter(ARM)
    f.reset(np.asarray(c.HOME))
    prev = f.last.copy()
    for cmd, q, age, estop in ticks:
        out = f.tick(cmd, q, age, estop=estop).command
        assert np.all(out >= ARM.q_min) and np.all(out <= ARM.q_max)
        assert np.all(np.abs(out - prev) <= ARM.max_step + 1e-12)
        assert workspace_excess(out) <= 1e-9  # HOME is inside, so every command is
        step = np.linalg.norm(np.subtract(ARM.chain.position(out), ARM.chain.position(prev)))
        assert step <= ARM.ee_speed_max * ARM.tick_period + 1e-9
        prev = out


FULL = SafetyLimits(**{**vars(LIMITS), "frozen_ticks": 2, "interpolate": True, "damp_periods": 5.0})
maybe_q = st.none() | vec
full_tick = st.tuples(maybe_cmd, maybe_q, st.floats(0.0, 1.0), st.booleans(), st.floats(0.0, 0.2))


@settings(max_examples=200, deadline=None)
@given(
    q0=st.lists(st.floats(-5, 5), min_size=N, max_size=N).map(np.array),
    ticks=st.lists(full_tick, max_size=40),
)
def test_every_stage_keeps_outputs_inside_the_envelope_and_rate_limit(q0: np.ndarray, ticks: list) -> None:
    """Damping, e-stop, stale/missing/frozen sensors and interpolation included."""
    f = make_filter(FULL)
    f.reset(q0)
    prev = f.last.copy()
    for cmd, q, age, estop, state_age in ticks:
        r = f.tick(cmd, q, age, estop=estop, state_age=state_age)
        assert np.all(np.isfinite(r.command))
        assert np.all(r.command >= FULL.q_min) and np.all(r.command <= FULL.q_max)
        assert np.all(np.abs(r.command - prev) <= FULL.max_step + 1e-12)
        assert (Stage.ESTOP in r.stages) == estop
        prev = r.command


def test_the_filters_plain_int_bits_are_the_stage_values() -> None:
    from deploy.safety import native_filter as safety  # the C engine's bits (filter.c's enum)

    for name in ("GUARD", "WATCHDOG", "ENVELOPE", "RATE", "CRITIC", "WORKSPACE", "ESTOP", "DAMP"):
        stage = {"GUARD": "INPUT_GUARD", "RATE": "RATE_LIMIT"}.get(name, name)
        assert getattr(safety, f"_{name}") == int(Stage[stage])
