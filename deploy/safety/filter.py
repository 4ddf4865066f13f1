"""The safety filter: every stage of the design's layering in one component, applied on
every tick of the fast loop (500-1000 Hz) by the sim loop, the ROS safety node and replay.

Per tick, in this order (``Stage`` bits report which ones changed the command):

1. input guard: non-finite or malformed command (wrong size, not real numbers) -> hold the
   last safe command; non-finite, malformed, stale (``sensor_timeout``), frozen or
   impossibly dated (negative or NaN ``state_age``) joint state -> hold
2. watchdog: policy command missing, older than ``watchdog_periods`` policy periods or of
   no valid age (negative, NaN: a clock that went backward) -> hold; older than
   ``damp_periods`` (a clock that jumped forward included) -> damp (the command follows the
   measured position). With a critic or interpolation, a live command is then clipped into
   ``[q_min, q_max]`` (reported as ``ENVELOPE``; stage 4 would clip it there anyway), so
   neither the critic's float32 graph nor the ramp ever sees an absurd finite value (1e39)
3. learned critic (optional): if Q_risk(s, a) > threshold, the safest candidate instead
   (scaled back toward hold, hold, stop, sampled recovery actions); see ``deploy.safety.critic``
4. envelope: joint position limits and a velocity envelope around the measured position,
   CBF-style toward each limit (``cmd - q <= min(1, alpha T) (q_max - q)``); then the rate
   limit (``max_step`` per tick) and the workspace box on the end effector of the command
   (the step is shortened toward the last safe command until it is inside), with an optional
   Cartesian rate limit on the end effector (``ee_speed_max``)
5. e-stop: overrides stages 1-3: stop and hold where the arm is when it engages (the measured
   position then, latched until the e-stop is released), still
   through the envelope and the rate limit
6. last stage, never bypassed: the command about to be emitted is finite, inside
   ``[q_min, q_max]`` and within ``max_step`` (plus a rounding tolerance) of the last one,
   checked with comparisons that fail on NaN; if not, the last safe command is emitted
   instead and ``LAST_STAGE`` is reported together with the bits of the stages that acted
   on that tick (the bad value came from one of them; a non-finite target passes stage 4
   unchanged, so it shows ``ENVELOPE`` and ``RATE_LIMIT`` too). With stages 1-5 correct it
   never acts; it is what makes the invariants hold whatever a stage (or a critic) does.

Invariants (tested with hypothesis over arbitrary input sequences, float64 extremes, wrong
dtypes and both engines, by checkers that share no code with the filter:
tests/deploy/test_safety_extremes.py): every command is finite, inside ``[q_min, q_max]``,
within ``max_step`` of the previous one, and, with a workspace box, its end effector is
inside the box or no further outside than the previous one's. The learned critic can be
wrong out of distribution, so the deterministic stages always run.
"""

from __future__ import annotations

import copy
import math
import sys
from operator import le
from typing import Protocol

import numpy as np

from deploy.safety.limits import SafetyLimits, Stage, TickReport

__all__ = ["RiskCritic", "SafetyFilter", "SafetyLimits", "Stage", "TickReport"]

_WORKSPACE_FRACTIONS = (0.5, 0.25, 0.0)  # step fractions tried when a command leaves the box
_GUARD, _WATCHDOG, _ENVELOPE, _RATE = 1, 2, 4, 8  # Stage bits as plain ints (fast)
_CRITIC, _WORKSPACE, _ESTOP, _DAMP, _LAST = 16, 32, 64, 128, 256
_STAGES = {bits: Stage(bits) for bits in range(512)}  # Stage(bits) is slow to construct
_F64 = np.dtype(np.float64)
_C_FLOATS = (_F64, np.dtype(np.float32))  # what the C tick reads as it is
_REAL_KINDS = "fiu"  # dtype kinds read as joint values: float, signed and unsigned int
_UNREADABLE = np.empty(0)  # a vector that is not real numbers: the wrong size for any robot
# The last stage accepts a step of max_step plus this much (relative to the joint's range):
# the rate limit's and the workspace's own rounding, ~1e3 ulps, never a real excess
_STEP_TOLERANCE = 1e-12


def _vector(x: object) -> np.ndarray:
    """``x`` as a flat float64 vector; ``_UNREADABLE`` (size 0) if it is not an array of
    real numbers (object, string, complex, bool arrays; ragged lists): malformed input,
    which the input guard refuses like a vector of the wrong size."""
    if type(x) is np.ndarray and x.dtype is _F64:  # the usual case, without a conversion
        return x.reshape(-1)
    try:
        a = np.asarray(x)
        if a.dtype.kind not in _REAL_KINDS:
            return _UNREADABLE
        return a.astype(np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        return _UNREADABLE


def _critic_input(observation: object) -> np.ndarray:
    """The observation as the C tick reads it: a contiguous float64 or float32 array, or
    ``_UNREADABLE`` (the critic then keeps the command and reports NaN, as for NaN)."""
    if type(observation) is np.ndarray and observation.dtype in _C_FLOATS:
        return np.ascontiguousarray(observation)
    return np.ascontiguousarray(_vector(observation))


def finite(x: np.ndarray) -> bool:
    """Every entry of a small float vector is finite (the sum of plain floats: ~0.3 µs, five
    times less than ``np.isfinite(x).all()``; a sum that overflows, from entries near 1e308,
    counts as not finite too)."""
    return math.isfinite(sum(x.tolist()))


def _dist(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Euclidean distance (m), summed in the order the C tick sums it."""
    dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return math.sqrt(dx * dx + dy * dy + dz * dz)


class RiskCritic(Protocol):
    """What the filter needs of a learned critic (``deploy.safety.critic.CriticGuard`` is one)."""

    period_ticks: int  # re-evaluate an unchanged command every this many ticks

    def evaluate(
        self, observation: np.ndarray, action: np.ndarray, hold: np.ndarray
    ) -> tuple[np.ndarray, float, int]:
        """(chosen command (n,) rad, Q_risk of ``action``, chosen candidate index)."""
        ...


class SafetyFilter:
    """Stateful filter: ``reset`` once per episode, then ``tick`` (or ``__call__``) per tick.

    Args:
        limits: what to enforce.
        critic: a learned critic (stage 3), or None for the deterministic stages only.
        engine: ``"native"``: every tick in C (``deploy.safety.native_filter``: the same stages,
            bit-identical commands, the critic's graph in C too), or an error saying why not;
            ``"python"``: this class's own code; ``"auto"``: native where the C extension is
            built and the critic (if any) runs natively, else Python.

    Attributes:
        engine: ``"native"`` or ``"python"``; ``engine_note`` says why not native.
    """

    def __init__(self, limits: SafetyLimits, critic: RiskCritic | None = None, engine: str = "auto") -> None:
        from deploy.safety.native_filter import ENGINES

        if engine not in ENGINES:
            raise ValueError(f"safety filter engine {engine!r} is not one of {ENGINES}")
        self.limits = limits
        self.critic = critic
        self.n = limits.q_min.size
        self.last: np.ndarray | None = None
        lim = limits
        self._reach = lim.v_max * lim.policy_period
        self._max_step = lim.max_step
        self._cbf = min(1.0, lim.cbf_alpha * lim.policy_period)
        # Per-joint constants as plain floats for ``_bound`` (7 joints: ~2.5x faster than numpy)
        self._final_step = self._last_stage_steps(lim)
        consts = (lim.q_min, lim.q_max, self._reach, self._max_step, self._final_step)
        self._joint_consts = tuple(zip(*(c.tolist() for c in consts), strict=True))
        self._watchdog_age = lim.watchdog_periods * lim.policy_period
        self._damp_age = lim.damp_periods * lim.policy_period
        # clip a live command into [q_min, q_max] before the critic and the ramp (without
        # them, stage 4's clip gives the same command: nothing to do)
        self._clip_command = critic is not None or lim.interpolate
        self._q_lo, self._q_hi = tuple(lim.q_min.tolist()), tuple(lim.q_max.tolist())
        self._box = None
        if lim.workspace_low is not None:
            self._box = (tuple(lim.workspace_low), tuple(lim.workspace_high))
        self._ee_step = None if lim.ee_speed_max is None else lim.ee_speed_max * lim.tick_period
        self._cartesian = self._box is not None or self._ee_step is not None
        self._reset_state()
        self.engine, self.engine_note, self._native = "python", "", None
        self._shadow: SafetyFilter | None = None  # the twin that ``warm`` ticks
        if engine != "python":
            self._load_native(required=engine == "native")

    @staticmethod
    def _last_stage_steps(lim: SafetyLimits) -> np.ndarray:
        """Per joint, the largest step the last stage accepts: ``max_step`` plus rounding,
        a finite number (so that the step check also refuses an infinite command)."""
        steps = []
        for lo, hi, step in zip(lim.q_min.tolist(), lim.q_max.tolist(), lim.max_step.tolist(), strict=True):
            scale = max(abs(lo), abs(hi), abs(step))
            tol = step + _STEP_TOLERANCE * (1.0 + scale)
            steps.append(tol if math.isfinite(tol) else sys.float_info.max)
        return np.array(steps)

    def _load_native(self, required: bool) -> None:
        from deploy.safety.native_filter import NativeUnavailable, native_tick

        self._last_buf = np.zeros(self.n)
        try:
            self._native = native_tick(self, self._last_buf)
        except NativeUnavailable as e:
            if required:
                raise ValueError(f"safety filter: no native engine: {e}") from None
            self.engine_note = f"python ({e})"
            return
        self.engine = "native"
        self.tick = self._tick_native  # type: ignore[method-assign]

    def _reset_state(self) -> None:
        self._estop_target: np.ndarray | None = None  # the e-stop's hold target, once engaged
        self._q_bytes = b""
        self._same_q = 0
        self._prev_age = math.inf
        self._ramp_from: np.ndarray | None = None
        self._ramp_to: np.ndarray | None = None
        self._raw = b""  # bytes of the latest live policy command
        self._clipped: tuple[bytes, np.ndarray, bool] = (b"", _UNREADABLE, False)  # _clip's, cached
        self._live = b""  # bytes of the policy command the critic last judged
        self._critic_out: np.ndarray | None = None
        self._since_critic = 0
        self._risk, self._choice = math.nan, -1
        self._ws_excess = 0.0
        self._p_last = (0.0, 0.0, 0.0)

    def reset(self, joint_pos: np.ndarray) -> None:
        """Start from the measured position (clipped into the envelope); it must be finite."""
        q = np.asarray(joint_pos, dtype=np.float64).reshape(-1)
        if q.size != self.n or not np.all(np.isfinite(q)):
            raise ValueError(f"safety reset needs {self.n} finite joint positions, got {q}")
        self.last = np.clip(q, self.limits.q_min, self.limits.q_max)
        self._reset_state()
        if self._shadow is not None:
            self._shadow.reset(q)
        if self._native is not None:  # the C tick writes every command into this one array
            self._last_buf[:] = self.last
            self.last = self._last_buf
            self._native.reset()
            return
        if self._cartesian:
            self._ws_excess = math.inf  # accept the start, whatever it is
            _, self._p_last, self._ws_excess = self._cartesian_ok(self.last)

    def __call__(
        self, command: np.ndarray | None, joint_pos: np.ndarray, command_age: float
    ) -> tuple[np.ndarray, Stage]:
        """One tick of the deterministic stages: ``(safe command, stages)``; see ``tick``."""
        report = self.tick(command, joint_pos, command_age)
        return report.command, report.stages

    def tick(
        self,
        command: np.ndarray | None,
        joint_pos: np.ndarray | None,
        command_age: float,
        *,
        observation: np.ndarray | None = None,
        estop: bool = False,
        state_age: float = 0.0,
    ) -> TickReport:
        """Filter one tick.

        Args:
            command: the policy's joint targets ``(n,)`` (rad), or None when there is none yet;
                anything but ``n`` finite real numbers is refused (input guard: hold).
            joint_pos: measured joint positions ``(n,)`` (rad), or None when missing; refused
                like the command.
            command_age: seconds since the policy produced ``command``, from a monotonic
                clock: NaN or negative holds (watchdog), infinite damps.
            observation: the policy's observation vector, for the critic (stage 3 is skipped
                without it; one the critic cannot read keeps the command, risk NaN).
            estop: the e-stop input; while True the arm holds where it was when it engaged.
            state_age: seconds since ``joint_pos`` was measured; NaN or negative: not fresh.

        Returns:
            The report; ``report.command`` is a new array.
        """
        if self.last is None:
            raise RuntimeError("SafetyFilter used before reset()")
        last = self.last
        q = None if joint_pos is None else _vector(joint_pos)
        state_ok = self._state_ok(q, state_age)
        critic_ran = False
        bits = 0 if state_ok else _GUARD  # plain ints here: IntFlag arithmetic is slow
        if estop:
            if self._estop_target is None:  # where the arm is when the e-stop engages, held from then on
                self._estop_target = (q if state_ok else last).copy()
            target, bits = self._estop_target, bits | _ESTOP
        else:
            self._estop_target = None
            target, bits, live = self._command_target(command, command_age, q, state_ok, bits)
            if live and self.critic is not None and observation is not None:
                target, critic_ran = self._critic_stage(target, observation)
                if self._choice > 0:
                    bits |= _CRITIC
        out, envelope, rate, safe = self._bound(target, q if state_ok else None)
        if envelope:
            bits |= _ENVELOPE
        if rate:
            bits |= _RATE
        if self._cartesian and safe:  # (an unsafe command is held, not shortened)
            p_last, ws_excess = self._p_last, self._ws_excess
            out, moved = self._workspace(out)
            if moved:
                bits |= _WORKSPACE
                safe = self._last_stage_ok(out)  # a new command: the last stage checks it too
                if not safe:  # the workspace state is the held command's again
                    self._p_last, self._ws_excess = p_last, ws_excess
        if not safe:  # stage 6: hold the last safe command
            bits |= _LAST
            out = last
        self.last = out
        return TickReport(out.copy(), _STAGES[bits], self._risk, critic_ran, self._choice)

    def warm(
        self,
        command: np.ndarray | None,
        joint_pos: np.ndarray | None,
        command_age: float,
        *,
        observation: np.ndarray | None = None,
    ) -> None:
        """Tick a shadow twin of this filter (same limits, engine and critic graph, a state of
        its own) on these inputs and discard the result; this filter is left as it was.

        A fast loop calls it shortly before each deadline (with the latest inputs) so that the
        real tick finds its code and data in the caches: on a shared VM a tick that follows a
        millisecond of idling or spinning otherwise pays 10x for them (benchmarks/RESULTS.md,
        "Safety filter and critic"). It costs one more tick of CPU per period.
        """
        if self.last is None:
            raise RuntimeError("SafetyFilter used before reset()")
        if self._shadow is None:
            self._shadow = SafetyFilter(self.limits, copy.copy(self.critic), self.engine)
            self._shadow.reset(self.last)
        self._shadow.tick(command, joint_pos, command_age, observation=observation)

    def _tick_native(
        self,
        command: np.ndarray | None,
        joint_pos: np.ndarray | None,
        command_age: float,
        *,
        observation: np.ndarray | None = None,
        estop: bool = False,
        state_age: float = 0.0,
    ) -> TickReport:
        """``tick`` in C (``deploy/safety/native/filter.c``): the same stages, the same command."""
        if self.last is None:
            raise RuntimeError("SafetyFilter used before reset()")
        if command is not None:
            command = np.ascontiguousarray(_vector(command))
        if joint_pos is not None:
            joint_pos = np.ascontiguousarray(_vector(joint_pos))
        if observation is not None:
            observation = _critic_input(observation)
        bits, ran, choice, risk = self._native.tick(
            command, joint_pos, command_age, observation, estop, state_age
        )
        return TickReport(self.last.copy(), _STAGES[bits], risk, ran, choice)

    # --- stages ------------------------------------------------------------------------
    def _bound(self, target: np.ndarray, q: np.ndarray | None) -> tuple[np.ndarray, bool, bool, bool]:
        """Stage 4 on plain floats: the CBF-style envelope around ``q`` (skipped when the
        state is not usable), the position limits, then the rate limit around the last
        command: ``(command, envelope acted, rate limit acted, last stage passed)``.

        A NaN target passes through unchanged (every comparison is false); the last stage's
        check of the result (``_last_stage_ok``, repeated here on each joint: the same
        comparisons, without a second loop) fails it."""
        cbf, out = self._cbf, []
        envelope = rate = False
        safe = True
        qs = q.tolist() if q is not None else (None,) * self.n
        for t, qj, prev, (lo, hi, reach, step, final) in zip(
            target.tolist(), qs, self.last.tolist(), self._joint_consts, strict=True
        ):  # comparisons, not min()/max() calls: those cost ~0.1 µs each
            b = t
            if qj is not None:
                d = cbf * (qj - lo)
                d = qj - (d if d < reach else reach)
                if b < d:
                    b = d
                u = cbf * (hi - qj)
                u = qj + (u if u < reach else reach)
                if b > u:
                    b = u
            if b < lo:
                b = lo
            elif b > hi:
                b = hi
            o = b
            if o < prev - step:
                o = prev - step
            elif o > prev + step:
                o = prev + step
            if b != t:
                envelope = True
            if o != b:
                rate = True
            if not (lo <= o <= hi and abs(o - prev) <= final):  # stage 6 (NaN fails)
                safe = False
            out.append(o)
        return np.array(out), envelope, rate, safe

    def _last_stage_ok(self, out: np.ndarray) -> bool:
        """Stage 6: every joint of ``out`` inside ``[q_min, q_max]`` and within the step of the
        last command (which is finite: the reset clipped a finite position, and every tick
        since emitted a command that passed this check). Each test is ``a <= b``, which NaN
        fails, and the step bound is finite, so an infinite command fails too."""
        for o, prev, (lo, hi, _, _, final) in zip(
            out.tolist(), self.last.tolist(), self._joint_consts, strict=True
        ):
            if not (lo <= o <= hi and abs(o - prev) <= final):
                return False
        return True

    def _state_ok(self, q: np.ndarray | None, state_age: float) -> bool:
        """Input guard on the sensor: present, right size, finite, fresh (an age in
        ``[0, sensor_timeout]``: a negative or NaN age is a broken clock), not frozen."""
        fresh = 0.0 <= state_age <= self.limits.sensor_timeout
        if q is None or q.size != self.n or not fresh or not finite(q):
            self._same_q = 0
            return False
        if self.limits.frozen_ticks <= 0:
            return True
        raw = q.tobytes()
        self._same_q = self._same_q + 1 if raw == self._q_bytes else 0
        self._q_bytes = raw
        frozen = self._same_q >= self.limits.frozen_ticks
        return not (frozen and float(np.max(np.abs(self.last - q))) > self.limits.frozen_tolerance)

    def _command_target(
        self, command: np.ndarray | None, age: float, q: np.ndarray | None, state_ok: bool, bits: int
    ) -> tuple[np.ndarray, int, bool]:
        """Input guard on the command and the watchdog: (target, stages, command is live).

        Fresh means an age in ``[0, watchdog age]``: a NaN or negative age (a clock that went
        backward) holds, an infinite one (or one past ``damp_periods``) damps."""
        lim, hold = self.limits, self.last
        if command is None:
            return hold, bits | _WATCHDOG, False
        cmd = _vector(command)
        if cmd.size != self.n or not finite(cmd):
            return hold, bits | _GUARD, False
        if not 0.0 <= age <= self._watchdog_age:
            if age > self._damp_age and state_ok:
                return q, bits | _WATCHDOG | _DAMP, False
            return hold, bits | _WATCHDOG, False
        if not state_ok:
            return hold, bits, False
        new = age < self._prev_age
        self._prev_age = age
        self._raw = cmd.tobytes()
        if self._clip_command:  # once per policy command, not per tick
            if self._clipped[0] != self._raw:
                self._clipped = (self._raw, *self._clip(cmd))
            _, clipped_cmd, clipped = self._clipped
            if clipped:  # (unclipped, the cached array may be the caller's: use this one)
                cmd, bits = clipped_cmd, bits | _ENVELOPE
        if lim.interpolate:
            if new:
                self._ramp_from = hold.copy() if self._ramp_from is None else self._ramp_to
                self._ramp_to = cmd.copy()
            frac = min(1.0, max(0.0, age / lim.policy_period))
            cmd = self._ramp_from + frac * (cmd - self._ramp_from)
        return cmd, bits, True

    def _clip(self, cmd: np.ndarray) -> tuple[np.ndarray, bool]:
        """A finite command clipped into ``[q_min, q_max]``: (command, clipped)."""
        vals = cmd.tolist()
        if all(map(le, self._q_lo, vals)) and all(map(le, vals, self._q_hi)):
            return cmd, False
        out = []
        for x, lo, hi in zip(vals, self._q_lo, self._q_hi, strict=True):
            out.append(lo if x < lo else hi if x > hi else x)
        return np.array(out), True

    def _critic_stage(self, target: np.ndarray, observation: np.ndarray) -> tuple[np.ndarray, bool]:
        """Stage 3: judge a new command at once, an unchanged one every ``period_ticks``."""
        critic = self.critic
        self._since_critic += 1
        changed = self._raw != self._live
        if changed or self._since_critic >= critic.period_ticks:
            chosen, self._risk, self._choice = critic.evaluate(observation, target, self.last)
            self._live, self._critic_out, self._since_critic = self._raw, chosen, 0
            return chosen, True
        return (self._critic_out if self._choice > 0 else target), False

    def _cartesian_ok(self, cmd: np.ndarray) -> tuple[bool, tuple[float, float, float], float]:
        """(acceptable, end-effector point (m), box excess (m)) of a command: inside the box
        (or no further out than the last command) and within the Cartesian step."""
        p = self.limits.chain.position(cmd)
        excess = 0.0
        if self._box is not None:
            (lx, ly, lz), (hx, hy, hz) = self._box
            x, y, z = p
            excess = (
                (lx - x if x < lx else x - hx if x > hx else 0.0)
                + (ly - y if y < ly else y - hy if y > hy else 0.0)
                + (lz - z if z < lz else z - hz if z > hz else 0.0)
            )
        ok = excess <= self._ws_excess + 1e-9
        if ok and self._ee_step is not None:
            ok = _dist(p, self._p_last) <= self._ee_step
        return ok, p, excess

    def _workspace(self, out: np.ndarray) -> tuple[np.ndarray, bool]:
        """Shorten the step from ``last`` to ``out`` until its end effector is in the box (or
        no further out than the last command's, if that one was out) and within the
        Cartesian rate limit; a step of zero (the last command) is always acceptable."""
        if out.tobytes() == self.last.tobytes():  # holding (most ticks between policy ticks):
            return out, False  # its point and excess are the last ones; no kinematics needed
        ok, p, excess = self._cartesian_ok(out)
        if ok:
            self._p_last, self._ws_excess = p, excess
            return out, False
        fracs = list(_WORKSPACE_FRACTIONS)
        if self._ee_step is not None:
            moved = _dist(p, self._p_last)
            if moved > self._ee_step:
                fracs.insert(0, 0.95 * self._ee_step / moved)
        for frac in fracs:
            if frac <= 0.0:
                return self.last.copy(), True
            cand = self.last + frac * (out - self.last)
            ok, p, excess = self._cartesian_ok(cand)
            if ok:
                self._p_last, self._ws_excess = p, excess
                return cand, True
        raise AssertionError("unreachable: the fractions end with 0")
