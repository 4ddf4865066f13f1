"""Issue 20: the last stage, which no input and no stage can bypass, on both engines.

Whatever reaches the filter (float64 extremes: +-1e39, +-1e308, +-inf, NaN payloads,
subnormals, -0.0; wrong sizes and dtypes; stuck, backward and jumping clocks; late,
duplicated and frozen sensor readings) and whatever a stage makes of it, every emitted command
is finite, inside the position envelope and within the rate limit of the one before, and both
engines emit the same bits. The checker below is written from the robot's raw TaskSpec
numbers and shares no code with the filter: not ``SafetyLimits.max_step``, not its ``q_min``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from deploy.safety.critic import CriticGuard
from deploy.safety.engines import load_critic
from deploy.safety.filter import SafetyFilter, SafetyLimits, Stage, TickReport
from deploy.safety.interface import FilterEngine, RiskCritic
from deploy.safety.kinematics import chain_from_mujoco
from deploy.safety.native_critic import NativeOnnxCritic, build_native
from deploy.safety.native_filter import NativeSafetyFilter
from sim.observation import build_observation
from sim.robots.arm7 import constants as c
from sim.robots.arm7.physics import Arm7Physics
from tests.deploy.test_safety_critic import untrained_critic
from tests.deploy.test_safety_native import same

TASK = "reach_obstacles"
ENGINES = ("python", "native")
CLASSES: dict[str, type[FilterEngine]] = {"python": SafetyFilter, "native": NativeSafetyFilter}
ENV = sim.make(TASK)
ENV.reset(seed=3)
SPEC = ENV.task_spec
STATE = ENV.state()
N = SPEC.n_joints
Q0 = np.asarray(STATE["joint_pos"], dtype=np.float64).copy()
OBS = build_observation(STATE, SPEC.observation)  # float32, as the policy's

# --- the contract, from the raw numbers (shares nothing with deploy.safety.filter) ---------------
MARGIN = 0.08  # rad inside each joint limit
TICK_HZ = 500.0
POLICY_PERIOD = 1.0 / SPEC.control_hz  # 0.04 s
WATCHDOG_PERIODS, DAMP_PERIODS = 3.0, 10.0  # passed explicitly below
SENSOR_TIMEOUT = 0.05
LO = np.array([float(x) + MARGIN for x in SPEC.joint_pos_min])
HI = np.array([float(x) - MARGIN for x in SPEC.joint_pos_max])
STEP = np.array([float(v) / TICK_HZ for v in SPEC.joint_vel_max])
TOLERANCE = 1e-9  # rad: rounding, never a real excess


def assert_safe(out: np.ndarray, prev: np.ndarray, where: object = "") -> None:
    """The contract on one emitted command, checked element by element in plain Python."""
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (N,), where
    for j, (o, p) in enumerate(zip(out.tolist(), prev.tolist(), strict=True)):
        assert math.isfinite(o), (where, j, o)
        assert LO[j] <= o <= HI[j], (where, j, o, LO[j], HI[j])
        assert abs(o - p) <= STEP[j] + TOLERANCE, (where, j, o, p, STEP[j])


def start_of(q0: np.ndarray) -> np.ndarray:
    """Where a filter reset at ``q0`` starts: ``q0`` clipped into the envelope."""
    return np.array([min(max(float(x), lo), hi) for x, lo, hi in zip(q0, LO, HI, strict=True)])


def limits(interpolate: bool = False, box: bool = False, **kwargs: Any) -> SafetyLimits:
    extra: dict[str, Any] = {}
    if box:
        extra = {
            "chain": CHAIN,
            "workspace_low": (0.1, -0.6, 0.02),
            "workspace_high": (0.9, 0.6, 0.9),
            "ee_speed_max": 1.0,
        }
    return SafetyLimits.from_spec(
        SPEC,
        margin=MARGIN,
        tick_hz=TICK_HZ,
        watchdog_periods=WATCHDOG_PERIODS,
        damp_periods=DAMP_PERIODS,
        sensor_timeout=SENSOR_TIMEOUT,
        interpolate=interpolate,
        **extra,
        **kwargs,
    )


CHAIN = chain_from_mujoco(Arm7Physics().model, c.JOINT_NAMES, c.EE_SITE)


@pytest.fixture(scope="module")
def critic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_critic(TASK, tmp_path_factory.mktemp("critic"))


@pytest.fixture(scope="module")
def guards(critic_path: Path) -> dict[str, CriticGuard]:
    """One critic per engine (the Python filter calls the same C critic: identical risks)."""
    return {e: load_critic(critic_path, SPEC, tick_hz=TICK_HZ, engine="native") for e in ENGINES}


def build(engine: str, lim: SafetyLimits, critic: RiskCritic | None = None) -> FilterEngine:
    """The filter of ``engine``: the numpy reference or the C engine, two separate classes."""
    return CLASSES[engine](lim, critic)


def pair(lim: SafetyLimits, guards: dict[str, CriticGuard] | None = None) -> dict[str, FilterEngine]:
    filters = {e: build(e, lim, None if guards is None else guards[e]) for e in ENGINES}
    assert [f.engine for f in filters.values()] == list(ENGINES)
    return filters


# --- strategies: float64 extremes as bit patterns (NaN payloads survive) ------------------
def bits_of(x: float) -> int:
    return int(np.array(x, dtype=np.float64).view(np.uint64))


def from_bits(patterns: list[int]) -> np.ndarray:
    return np.array(patterns, dtype=np.uint64).view(np.float64)


EXTREMES = [
    1e39, -1e39, 3.5e38, -3.5e38,  # finite in float64, inf in the critic's float32
    1e308, -1e308, 1.7976931348623157e308, -1.7976931348623157e308,
    math.inf, -math.inf, math.nan,
    5e-324, -5e-324, 1e-310, 2.2250738585072014e-308,  # subnormals, the least normal
    0.0, -0.0,
]  # fmt: skip
nan_payload = st.builds(
    lambda mantissa, sign: (sign << 63) | (0x7FF << 52) | mantissa,  # quiet and signaling NaNs
    st.integers(1, 2**52 - 1),
    st.integers(0, 1),
)
ordinary = st.floats(-3.5, 3.5).map(bits_of)  # inside and outside the joint limits
element = st.one_of(
    ordinary,
    st.sampled_from([bits_of(x) for x in EXTREMES]),
    nan_payload,
    st.integers(0, 2**64 - 1),  # any bit pattern
)
plain_vector = st.lists(ordinary, min_size=N, max_size=N).map(from_bits)
wild_vector = st.lists(element, min_size=N, max_size=N).map(from_bits)


@st.composite
def spiked_vector(draw: st.DrawFn) -> np.ndarray:
    """An ordinary vector with one or two extreme entries (the sum stays finite more often)."""
    v = draw(st.lists(ordinary, min_size=N, max_size=N))
    for _ in range(draw(st.integers(1, 2))):
        v[draw(st.integers(0, N - 1))] = draw(element)
    return from_bits(v)


FORMS = (
    "f64", "f64", "f64", "f64", "f32", "int", "list", "2d", "strided", "big_endian",
    "object", "str", "complex", "bool", "short", "long", "empty", "ragged",
)  # fmt: skip


def reform(v: np.ndarray, form: str) -> Any:
    """``v`` in another type or shape: the filter reads the real-number ones (float32, ints,
    lists, 2-D, strided, byte-swapped) and refuses the rest without raising."""
    with np.errstate(all="ignore"):
        if form == "f32":
            return v.astype(np.float32)
        if form == "int":
            return np.nan_to_num(v, nan=0.0, posinf=9e18, neginf=-9e18).clip(-9e18, 9e18).astype(np.int64)
        if form == "list":
            return v.tolist()
        if form == "2d":
            return v.reshape(1, -1)
        if form == "strided":
            return np.repeat(v, 2)[::2]
        if form == "big_endian":
            return v.astype(">f8")
        if form == "object":
            return v.astype(object)
        if form == "str":
            return v.astype(str)
        if form == "complex":
            return v.astype(complex)
        if form == "bool":
            return v != 0.0
        if form == "short":
            return v[:-1]
        if form == "long":
            return np.append(v, 0.1)
        if form == "empty":
            return v[:0]
        if form == "ragged":
            return [v.tolist(), [1.0]]
    return v


def vectors(base: st.SearchStrategy[np.ndarray]) -> st.SearchStrategy[Any]:
    return st.tuples(base, st.sampled_from(FORMS)).map(lambda t: reform(*t))


command = st.none() | vectors(plain_vector | spiked_vector() | wild_vector)
joint_pos = st.none() | st.just("same") | vectors(plain_vector | plain_vector | spiked_vector() | wild_vector)
age = st.one_of(
    st.floats(0.0, 0.6),  # fresh, held, damped
    st.sampled_from([-0.0, -1e-9, -0.01, -1e308, 5e-324, -5e-324, math.inf, -math.inf, 1e39, 1e308]),
    nan_payload.map(lambda b: float(from_bits([b])[0])),
)
state_age = st.sampled_from([0.0, 0.0, 0.0, 0.001]) | age


@st.composite
def observation(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["none", "plain", "plain", "spiked", "f64", "malformed"]))
    if kind == "none":
        return None
    obs = OBS.copy()
    if kind == "plain":
        return obs
    obs = obs.astype(np.float64)
    for _ in range(draw(st.integers(1, 3))):
        obs[draw(st.integers(0, obs.size - 1))] = from_bits([draw(element)])[0]
    if kind == "malformed":
        return reform(obs, draw(st.sampled_from(FORMS)))
    return obs


tick = st.tuples(
    command,
    joint_pos,
    age,
    state_age,
    st.sampled_from([False] * 7 + [True]),  # e-stop
    observation(),
)


def run_both(filters: dict[str, FilterEngine], q0: np.ndarray, ticks: list) -> list[TickReport]:
    """Tick both engines on ``ticks``; check the contract on every command of each and that
    they are the same; the Python engine's reports."""
    for f in filters.values():
        f.reset(q0)
    prev = start_of(q0)
    q: Any = q0
    reports = []
    for i, (cmd, pos, cmd_age, s_age, estop, obs) in enumerate(ticks):
        q = q if isinstance(pos, str) else pos
        a, b = (
            f.tick(cmd, q, cmd_age, observation=obs, estop=estop, state_age=s_age) for f in filters.values()
        )
        assert same(a, b), (i, a, b)
        assert_safe(a.command, prev, (i, a.stages))
        assert ((a.stages & Stage.ESTOP) != 0) == estop
        prev = a.command
        reports.append(a)
    return reports


q0s = st.lists(st.floats(-3.5, 3.5), min_size=N, max_size=N).map(np.array)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("interpolate", [False, True])
@pytest.mark.parametrize("box", [False, True])
@FAST
@given(q0=q0s, ticks=st.lists(tick, max_size=30))
def test_every_command_is_safe_and_the_engines_agree(
    interpolate: bool, box: bool, q0: np.ndarray, ticks: list
) -> None:
    filters = pair(limits(interpolate, box, frozen_ticks=3))
    reports = run_both(filters, q0, ticks)
    # the stages before the last one keep every command safe on their own: the last stage
    # is a backstop here, never the reason the contract holds
    assert all(Stage.LAST_STAGE not in r.stages for r in reports)


@pytest.mark.parametrize("interpolate", [False, True])
@settings(FAST, max_examples=60)
@given(q0=st.just(Q0) | q0s, ticks=st.lists(tick, max_size=30), threshold=st.sampled_from([1e-6, 0.5, 1.0]))
def test_with_the_critic_every_command_is_safe_and_the_engines_agree(
    guards: dict[str, CriticGuard], interpolate: bool, q0: np.ndarray, ticks: list, threshold: float
) -> None:
    for g in guards.values():
        g.threshold = threshold
    reports = run_both(pair(limits(interpolate), guards), q0, ticks)
    assert all(Stage.LAST_STAGE not in r.stages for r in reports)


# --- the two bug reports ---------------------------------------------------------------
def attack_then_normal(
    filters: dict[str, FilterEngine], attack: np.ndarray, normal: np.ndarray, ticks: int = 60
) -> dict[str, list[TickReport]]:
    """``ticks`` ticks of ``attack`` (a new policy command every 20 ticks), then ``normal``
    for as long; every command checked against the contract."""
    out: dict[str, list[TickReport]] = {}
    for engine, f in filters.items():
        f.reset(Q0)
        prev, reports = start_of(Q0), []
        for i in range(2 * ticks):
            cmd = attack if i < ticks else normal
            r = f.tick(cmd, Q0, (i % 20) / TICK_HZ, observation=OBS)
            assert_safe(r.command, prev, (engine, i, r.stages))
            prev = r.command
            reports.append(r)
        out[engine] = reports
    assert all(same(a, b) for a, b in zip(out["python"], out["native"], strict=True))
    return out


@pytest.mark.parametrize("interpolate", [False, True])
@pytest.mark.parametrize("threshold", [1e-6, 1.0])
@pytest.mark.parametrize("big", [1e39, -1e39, 1e308, -1e308])
def test_one_absurd_finite_command_does_not_poison_the_critic(
    guards: dict[str, CriticGuard], interpolate: bool, threshold: float, big: float
) -> None:
    """Issue 20: a float64 command of 1e39 (inf in the critic's float32) made the candidates,
    the hold and so every later command NaN. Now the critic sees the command clipped into the
    envelope, every risk stays a number, and the filter tracks normal commands again."""
    for g in guards.values():
        g.threshold = threshold
    attack = Q0.copy()
    attack[1] = big
    normal = start_of(Q0 + 0.03)
    reports = attack_then_normal(pair(limits(interpolate), guards), attack, normal)
    for engine in ENGINES:
        rs = reports[engine]
        assert all(Stage.LAST_STAGE not in r.stages for r in rs)  # fixed at the root
        assert all(r.critic_ran for r in rs[:1]) and all(0.0 <= r.risk <= 1.0 for r in rs)
        assert Stage.ENVELOPE in rs[0].stages  # the clip before the critic says so
        if threshold == 1.0:  # the critic accepts everything: the commands are the policy's
            np.testing.assert_array_equal(rs[-1].command, normal)
        assert np.all(np.isfinite(guards[engine].last_risks))  # every candidate judged again


@pytest.mark.parametrize("critic", [False, True])
@pytest.mark.parametrize("big", [1e308, -1e308, 1.7976931348623157e308, 1e39])
def test_interpolation_with_a_command_near_the_largest_double(
    guards: dict[str, CriticGuard], critic: bool, big: float
) -> None:
    """Issue 20: ``from + frac * (cmd - from)`` overflowed to inf (and 0 * inf to NaN) with
    +-1e308; the command is clipped into the (finite) envelope before the ramp now."""
    for g in guards.values():
        g.threshold = 1.0
    attack = Q0.copy()
    attack[0] = big
    normal = start_of(Q0 - 0.03)
    reports = attack_then_normal(pair(limits(interpolate=True), guards if critic else None), attack, normal)
    for engine in ENGINES:
        rs = reports[engine]
        assert all(Stage.LAST_STAGE not in r.stages for r in rs)
        np.testing.assert_array_equal(rs[-1].command, normal)  # tracks the policy again
        moved = rs[59].command[0] - rs[0].command[0]
        assert math.copysign(1.0, big) * moved > 0.05  # it went toward the clipped command


# --- the last stage itself ---------------------------------------------------------------
class BrokenCritic:
    """A critic that returns ``bad`` (choice 1) on its first ``bad_calls`` calls, then the
    action: a stand-in for any stage that goes wrong."""

    period_ticks = 1

    def __init__(self, bad: np.ndarray, bad_calls: int = 1) -> None:
        self.bad, self.calls, self.bad_calls = bad, 0, bad_calls

    def evaluate(self, observation: np.ndarray, action: np.ndarray, hold: np.ndarray) -> tuple:
        self.calls += 1
        if self.calls <= self.bad_calls:
            return self.bad.copy(), 0.9, 1
        return np.array(action, dtype=np.float64), 0.1, 0


@pytest.mark.parametrize("bad", [math.nan, -math.nan, math.inf, -math.inf, 1e39])
def test_the_last_stage_holds_a_bad_value_and_names_the_stage(bad: float) -> None:
    f = SafetyFilter(limits(), BrokenCritic(np.where(np.arange(N) == 2, bad, Q0), bad_calls=3))
    f.reset(Q0)
    prev = f.last.copy()
    cmd = start_of(Q0 + 0.01)
    for _ in range(3):
        r = f.tick(cmd, Q0, 0.0, observation=OBS)
        assert_safe(r.command, prev)
        assert Stage.CRITIC in r.stages  # the stage that produced the value
        if math.isnan(bad):  # held: the last safe command, and the last stage says so
            assert Stage.LAST_STAGE in r.stages
            np.testing.assert_array_equal(r.command, prev)
        else:  # an infinite or absurd target is a bound away: the envelope clips it
            assert Stage.LAST_STAGE not in r.stages and Stage.ENVELOPE in r.stages
        prev = r.command
    for _ in range(10):  # the stage recovers: the filter tracks again
        r = f.tick(cmd, Q0, 0.0, observation=OBS)
        assert Stage.LAST_STAGE not in r.stages
        assert_safe(r.command, prev)
        prev = r.command
    np.testing.assert_array_equal(r.command, cmd)


def nan_critic(path: Path, out: Path) -> CriticGuard:
    """The real critic with a broken C graph: candidates 0-2 never pass (margin 2) and
    candidate 3 (hold) is NaN, so the graph chooses a NaN command; both engines call it."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t).copy()
        if t.name == "offsets":
            a[3] = np.nan
        elif t.name == "switch_margin":
            a.reshape(-1)[:3] = 2.0
        else:
            continue
        t.CopyFrom(numpy_helper.from_array(a, t.name))
    broken = out / "broken.onnx"
    onnx.save(model, str(broken))
    critic = NativeOnnxCritic(path, SPEC)  # passes its parity check...
    critic.evaluator, _ = build_native(broken, critic._q.start)  # ...then runs the broken graph
    return CriticGuard(critic, threshold=1.0)


@pytest.mark.parametrize("box", [False, True])
def test_the_last_stage_holds_a_nan_from_the_c_critic_on_both_engines(
    critic_path: Path, tmp_path: Path, box: bool
) -> None:
    guards = {e: nan_critic(critic_path, tmp_path) for e in ENGINES}
    filters = pair(limits(box=box), guards)
    for f in filters.values():
        f.reset(Q0)
    prev = start_of(Q0)
    cmd = start_of(Q0 + 0.01)
    for i in range(5):
        a, b = (f.tick(cmd, Q0, 0.0, observation=OBS) for f in filters.values())
        assert same(a, b), (i, a, b)
        assert a.choice == 3 and Stage.CRITIC in a.stages and Stage.LAST_STAGE in a.stages
        assert "last_stage" in a.stages.names() and "critic" in a.stages.names()
        np.testing.assert_array_equal(a.command, prev)  # the last safe command, held
    # a good observation path again (critic gone: no observation): the filter moves on
    a, b = (f.tick(cmd, Q0, 0.0) for f in filters.values())
    assert same(a, b) and Stage.LAST_STAGE not in a.stages
    assert_safe(a.command, prev)
    assert not np.array_equal(a.command, prev)


def test_the_last_stage_bit() -> None:
    from deploy.safety import native_filter as safety

    assert int(Stage.LAST_STAGE) == 256 == safety._LAST
    assert Stage.LAST_STAGE.names() == ["last_stage"]
    assert (Stage.CRITIC | Stage.LAST_STAGE).names() == ["critic", "last_stage"]


# --- malformed inputs: read cleanly or refused, never an exception -----------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_wrong_dtypes_are_read_or_refused_cleanly(engine: str) -> None:
    f = build(engine, limits())
    f.reset(Q0)
    cmd = start_of(Q0 + 0.004)
    for form in ("f32", "list", "2d", "strided", "big_endian"):  # real numbers: read as such
        f.reset(Q0)
        value = reform(cmd, form)
        r = f.tick(value, Q0, 0.0)
        assert r.stages == Stage.NONE, form
        np.testing.assert_array_equal(r.command, np.asarray(value, dtype=np.float64).reshape(-1))
    f.reset(Q0)
    r = f.tick(np.rint(cmd).astype(np.int64), Q0, 0.0)  # whole radians: read, then bounded
    assert Stage.INPUT_GUARD not in r.stages
    assert_safe(r.command, start_of(Q0))
    for form in ("object", "str", "complex", "bool", "short", "long", "empty", "ragged"):
        f.reset(Q0)
        r = f.tick(reform(cmd, form), Q0, 0.0)  # a command that is not n real numbers: held
        assert Stage.INPUT_GUARD in r.stages, form
        np.testing.assert_array_equal(r.command, start_of(Q0))
        r = f.tick(cmd, reform(Q0, form), 0.0)  # a sensor reading that is not: held
        assert Stage.INPUT_GUARD in r.stages, form
        np.testing.assert_array_equal(r.command, start_of(Q0))


@pytest.mark.parametrize("form", ["object", "str", "short", "long", "bool", "f64_1e39", "f32", "list"])
def test_an_observation_the_critic_cannot_read_keeps_the_command(
    guards: dict[str, CriticGuard], form: str
) -> None:
    for g in guards.values():
        g.threshold = 0.5
    filters = pair(limits(), guards)
    obs: Any = OBS.astype(np.float64)
    if form == "f64_1e39":  # finite in float64, inf in the graph's float32
        obs[2] = 1e39
    else:
        obs = reform(obs, form)
    readable = form in ("f32", "list")
    for f in filters.values():
        f.reset(Q0)
    cmd = start_of(Q0 + 0.004)
    a, b = (f.tick(cmd, Q0, 0.0, observation=obs) for f in filters.values())
    assert same(a, b) and a.critic_ran
    if readable:
        assert 0.0 <= a.risk <= 1.0
    else:
        assert math.isnan(a.risk) and a.choice == 0 and Stage.CRITIC not in a.stages
        np.testing.assert_array_equal(a.command, cmd)


# --- clocks and sensors ------------------------------------------------------------------
WATCHDOG_AGE = WATCHDOG_PERIODS * POLICY_PERIOD  # 0.12 s
DAMP_AGE = DAMP_PERIODS * POLICY_PERIOD  # 0.4 s


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stuck_policy_clock_holds_then_damps(engine: str) -> None:
    """The command is never renewed (its stamp is stuck): its age keeps growing."""
    f = build(engine, limits())
    f.reset(Q0)
    q = start_of(Q0 - 0.05)  # the arm sags away from the command: damping follows it
    cmd = start_of(Q0 + 0.01)
    prev = start_of(Q0)
    held = None
    for i in range(400):
        cmd_age = i / TICK_HZ
        r = f.tick(cmd, q, cmd_age)
        assert_safe(r.command, prev, i)
        if cmd_age <= WATCHDOG_AGE:
            assert Stage.WATCHDOG not in r.stages, i
        elif cmd_age <= DAMP_AGE:
            assert r.stages & (Stage.WATCHDOG | Stage.DAMP) == Stage.WATCHDOG, i
            held = r.command if held is None else held
            np.testing.assert_array_equal(r.command, held)
        else:
            assert Stage.DAMP in r.stages and Stage.WATCHDOG in r.stages, i
        prev = r.command
    np.testing.assert_allclose(r.command, q, atol=1e-12)  # damped onto the measured position


BACKWARD = [-1e-9, -0.004, -1.0, -1e308, -math.inf, math.nan, -math.nan]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("bad", BACKWARD)
def test_a_backward_or_nan_command_age_is_not_fresh(engine: str, bad: float) -> None:
    f = build(engine, limits(interpolate=True))
    f.reset(Q0)
    cmd = start_of(Q0 + 0.02)
    first = f.tick(cmd, Q0, 0.0)
    r = f.tick(cmd + 0.01, Q0, bad)  # a clock that went backward (or is unreadable): hold
    assert r.stages == Stage.WATCHDOG
    np.testing.assert_array_equal(r.command, first.command)
    r = f.tick(cmd, Q0, 0.004)  # the clock is back: the command is live again
    assert Stage.WATCHDOG not in r.stages
    assert_safe(r.command, first.command)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("jump", [DAMP_AGE + 1e-6, 1e6, 1e308, math.inf])
def test_a_clock_that_jumps_forward_damps(engine: str, jump: float) -> None:
    f = build(engine, limits())
    f.reset(Q0)
    cmd = start_of(Q0 + 0.02)
    prev = f.tick(cmd, Q0, 0.0).command
    r = f.tick(cmd, Q0, jump)
    assert Stage.DAMP in r.stages and Stage.WATCHDOG in r.stages
    assert_safe(r.command, prev)
    r = f.tick(cmd, Q0, WATCHDOG_AGE + 1e-6)  # back to merely stale: hold
    assert r.stages == Stage.WATCHDOG


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("bad", [*BACKWARD, SENSOR_TIMEOUT + 1e-9, 1.0, math.inf, 1e308])
def test_a_sensor_reading_of_no_valid_age_trips_the_guard(engine: str, bad: float) -> None:
    """Late stamps (older than the timeout), stamps from the future (negative ages), NaN."""
    f = build(engine, limits())
    f.reset(Q0)
    cmd = start_of(Q0 + 0.02)
    first = f.tick(cmd, Q0, 0.0, state_age=0.0)
    r = f.tick(cmd, Q0, 0.002, state_age=bad)
    assert Stage.INPUT_GUARD in r.stages
    np.testing.assert_array_equal(r.command, first.command)  # held
    r = f.tick(cmd, Q0, 0.004, state_age=-0.0)  # -0.0 is a valid zero
    assert Stage.INPUT_GUARD not in r.stages


@pytest.mark.parametrize("engine", ENGINES)
def test_duplicated_sensor_stamps_trip_the_guard(engine: str) -> None:
    """The same reading delivered again and again: its stamp does not move, so its age grows
    past the timeout; with frozen detection on, the bit-identical reading trips it first."""
    for frozen_ticks, tripped_at in ((0, int(SENSOR_TIMEOUT * TICK_HZ) + 1), (5, 5)):
        f = build(engine, limits(frozen_ticks=frozen_ticks, frozen_tolerance=0.01))
        f.reset(Q0)
        far = start_of(Q0 + 0.5)  # the command pulls away from the reading
        stages = [f.tick(far, Q0.copy(), i / TICK_HZ % 0.04, state_age=i / TICK_HZ).stages for i in range(40)]
        guarded = [i for i, s in enumerate(stages) if Stage.INPUT_GUARD in s]
        assert guarded and guarded[0] == tripped_at, (frozen_ticks, guarded[:3])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_jumping_clock_sequence(engine: str) -> None:
    """A command clock that jumps back and forth: only the ticks of a valid age are live."""
    ages = [0.0, 0.002, -0.5, 0.004, math.nan, 0.006, 1e9, 0.008, -math.inf, 0.010]
    live = [True, True, False, True, False, True, False, True, False, True]
    f = build(engine, limits(interpolate=True))
    f.reset(Q0)
    prev = start_of(Q0)
    cmd = start_of(Q0 + 0.01)
    for a, ok in zip(ages, live, strict=True):
        r = f.tick(cmd, Q0, a)
        assert (Stage.WATCHDOG not in r.stages) == ok, (a, r.stages)
        assert_safe(r.command, prev, a)
        if not ok and Stage.DAMP not in r.stages:  # held (an infinite age damps instead)
            np.testing.assert_array_equal(r.command, prev)
        prev = r.command


def test_the_limits_used_here_are_the_contracts() -> None:
    """The checker's numbers and the filter's agree (else the property tests prove little)."""
    lim = limits()
    np.testing.assert_allclose(lim.q_min, LO, rtol=0, atol=1e-15)
    np.testing.assert_allclose(lim.q_max, HI, rtol=0, atol=1e-15)
    np.testing.assert_allclose(lim.max_step, STEP, rtol=1e-12)
    assert lim.sensor_timeout == SENSOR_TIMEOUT
    assert lim.watchdog_periods * lim.policy_period == WATCHDOG_AGE
    assert lim.damp_periods * lim.policy_period == DAMP_AGE
