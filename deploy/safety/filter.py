"""The safety filter: every stage of the design's layering in one component, applied on
every tick of the fast loop (500-1000 Hz) by the sim loop, the ROS safety node and replay.

This is the reference, plain numpy written to be read; the C engine
(``deploy.safety.native_filter``) repeats it operation for operation, and
``deploy.safety.engines.make_filter`` picks between the two.

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

Every comparison is written so that it keeps a NaN (``x < lo`` is false for NaN), and every
float operation is in the order the C engine performs it: the two must agree bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from deploy.safety.interface import FilterEngine, Input, RiskCritic, read_vector
from deploy.safety.limits import SafetyLimits, Stage, TickReport

__all__ = ["SafetyFilter", "SafetyLimits", "Stage", "TickReport"]

WORKSPACE_FRACTIONS = (0.5, 0.25, 0.0)  # step fractions tried when a command leaves the box
BOX_SLACK = 1e-9  # m: a command may be this much further outside the box than the last one


def all_finite(x: np.ndarray) -> bool:
    """The sum of the entries is finite: each entry is finite, and together they do not
    overflow (entries near 1e308 count as not finite; the C engine's test too)."""
    return math.isfinite(sum(x.tolist()))


def lesser(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` where ``a < b``, else ``b``."""
    return np.where(a < b, a, b)


def clip(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``x`` clipped into ``[lo, hi]``; a NaN stays NaN (it compares false both ways)."""
    return np.where(x < lo, lo, np.where(x > hi, hi, x))


def distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Euclidean distance (m) between two points."""
    dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return math.sqrt(dx * dx + dy * dy + dz * dz)


class SafetyFilter(FilterEngine):
    """The reference filter: ``reset`` once per episode, then ``tick`` (or ``__call__``) per
    tick (``deploy.safety.interface.FilterEngine``).

    Args:
        limits: what to enforce.
        critic: a learned critic (stage 3), or None for the deterministic stages only.
    """

    engine = "python"

    def __init__(self, limits: SafetyLimits, critic: RiskCritic | None = None) -> None:
        super().__init__(limits, critic)
        self._reach, self._cbf = limits.reach, limits.cbf_fraction
        self._max_step, self._final_step = limits.max_step, limits.last_stage_step
        # clip a live command into [q_min, q_max] before the critic and the ramp (without
        # them, stage 4's clip gives the same command: nothing to do)
        self._clip_command = critic is not None or limits.interpolate
        self._box = limits.workspace_low is not None
        self._cartesian = self._box or limits.ee_step is not None

    def _start(self, start: np.ndarray) -> None:
        """The episode's state, from the clipped start ``start`` ``(n,)`` (rad)."""
        self.last = start
        self._estop_target: np.ndarray | None = None  # the e-stop's hold, once engaged
        self._q_bytes, self._same_q = b"", 0  # the latest joint reading, ticks it has not changed
        self._prev_age = math.inf  # the latest live command's age
        self._ramp_from: np.ndarray | None = None
        self._ramp_to: np.ndarray | None = None
        self._raw = b""  # the latest live policy command
        self._judged = b""  # the policy command the critic last judged
        self._critic_out: np.ndarray | None = None
        self._since_critic = 0
        self._risk, self._choice = math.nan, -1
        self._p_last, self._ws_excess = (0.0, 0.0, 0.0), 0.0  # the last command's point, excess
        if self._cartesian:
            self._ws_excess = math.inf  # accept the start, whatever it is
            _, self._p_last, self._ws_excess = self._cartesian_ok(start)

    def _tick(
        self, command: Input, joint_pos: Input, age: float, observation: Input, estop: bool, state_age: float
    ) -> TickReport:
        """One tick, stage by stage (``FilterEngine.tick``)."""
        q = None if joint_pos is None else read_vector(joint_pos)
        if not self._sensor_ok(q, state_age):  # 1. the joint state
            q, stages = None, Stage.INPUT_GUARD
        else:
            stages = Stage.NONE
        critic_ran = False
        if estop:  # 5. overrides stages 1-3
            target, stages = self._estop_hold(q), stages | Stage.ESTOP
        else:
            self._estop_target = None
            target, stages, live = self._command_target(command, age, q, stages)  # 1-2
            if live and self.critic is not None and observation is not None:  # 3
                target, critic_ran = self._critic_stage(target, observation)
                if self._choice > 0:
                    stages |= Stage.CRITIC
        bounded = self._envelope(target, q)  # 4
        out = self._rate_limit(bounded)
        if (bounded != target).any():  # (a NaN target differs from itself: it shows here)
            stages |= Stage.ENVELOPE
        if (out != bounded).any():
            stages |= Stage.RATE_LIMIT
        safe = self._last_stage_ok(out)  # 6 on stage 4's command
        if safe and self._cartesian:  # (an unsafe command is held, not shortened)
            out, moved, where = self._workspace(out)
            if moved:
                stages |= Stage.WORKSPACE
                safe = self._last_stage_ok(out)  # 6 on the workspace's command
            if safe and where is not None:
                self._p_last, self._ws_excess = where
        if not safe:  # 6: hold the last safe command
            stages |= Stage.LAST_STAGE
            out = self.last
        self.last = out
        return TickReport(out.copy(), stages, self._risk, critic_ran, self._choice)

    # --- 1. input guard on the joint state -------------------------------------------------
    def _sensor_ok(self, q: np.ndarray | None, state_age: float) -> bool:
        """The joint state is present, of the right size, finite, fresh (an age in
        ``[0, sensor_timeout]``: a negative or NaN age is a broken clock) and not frozen (the
        same bits for ``frozen_ticks`` ticks while the command is away from it)."""
        lim = self.limits
        fresh = 0.0 <= state_age <= lim.sensor_timeout
        if q is None or q.size != self.n or not fresh or not all_finite(q):
            self._same_q = 0
            return False
        if lim.frozen_ticks <= 0:
            return True
        reading = q.tobytes()
        self._same_q = self._same_q + 1 if reading == self._q_bytes else 0
        self._q_bytes = reading
        frozen = self._same_q >= lim.frozen_ticks
        return not (frozen and float(np.max(np.abs(self.last - q))) > lim.frozen_tolerance)

    # --- 1-2. input guard on the command, watchdog --------------------------------------------
    def _command_target(
        self, command: np.ndarray | None, age: float, q: np.ndarray | None, stages: Stage
    ) -> tuple[np.ndarray, Stage, bool]:
        """(target, stages, the command is live) from the policy's command, its age and the
        measured position ``q`` (None when the joint state failed the guard).

        Fresh means an age in ``[0, watchdog_age]``: a NaN or negative age (a clock that went
        backward) holds, an infinite one (or one past ``damp_age``) damps."""
        lim, hold = self.limits, self.last
        if command is None:
            return hold, stages | Stage.WATCHDOG, False
        cmd = read_vector(command)
        if cmd.size != self.n or not all_finite(cmd):
            return hold, stages | Stage.INPUT_GUARD, False
        if not 0.0 <= age <= lim.watchdog_age:
            if age > lim.damp_age and q is not None:
                return q, stages | Stage.WATCHDOG | Stage.DAMP, False
            return hold, stages | Stage.WATCHDOG, False
        if q is None:
            return hold, stages, False
        new = age < self._prev_age
        self._prev_age = age
        self._raw = cmd.tobytes()
        if self._clip_command:
            clipped = clip(cmd, lim.q_min, lim.q_max)
            if (clipped != cmd).any():
                cmd, stages = clipped, stages | Stage.ENVELOPE
        if lim.interpolate:
            cmd = self._ramp(cmd, age, new)
        return cmd, stages, True

    def _ramp(self, cmd: np.ndarray, age: float, new: bool) -> np.ndarray:
        """Interpolation: from the previous policy command (the hold, before the first) toward
        ``cmd``, ``age`` into the policy period."""
        if new:
            self._ramp_from = self.last.copy() if self._ramp_from is None else self._ramp_to
            self._ramp_to = cmd.copy()
        frac = min(1.0, max(0.0, age / self.limits.policy_period))
        return self._ramp_from + frac * (cmd - self._ramp_from)

    # --- 3. learned critic ---------------------------------------------------------------
    def _critic_stage(self, target: np.ndarray, observation: np.ndarray) -> tuple[np.ndarray, bool]:
        """(target, the critic ran): a new command is judged at once, an unchanged one every
        ``period_ticks``; in between, the critic's latest choice stands."""
        critic = self.critic
        self._since_critic += 1
        if self._raw != self._judged or self._since_critic >= critic.period_ticks:
            chosen, self._risk, self._choice = critic.evaluate(observation, target, self.last)
            self._judged, self._critic_out, self._since_critic = self._raw, chosen, 0
            return chosen, True
        return (self._critic_out if self._choice > 0 else target), False

    # --- 4. envelope, rate limit, workspace ----------------------------------------------------
    def _envelope(self, target: np.ndarray, q: np.ndarray | None) -> np.ndarray:
        """The CBF-style velocity envelope around the measured position ``q`` (skipped when
        it is None), then the position limits."""
        lim, bounded = self.limits, target
        if q is not None:
            lower = q - lesser(self._cbf * (q - lim.q_min), self._reach)
            bounded = np.where(bounded < lower, lower, bounded)
            upper = q + lesser(self._cbf * (lim.q_max - q), self._reach)
            bounded = np.where(bounded > upper, upper, bounded)
        return clip(bounded, lim.q_min, lim.q_max)

    def _rate_limit(self, bounded: np.ndarray) -> np.ndarray:
        """At most ``max_step`` from the last command on each joint."""
        return clip(bounded, self.last - self._max_step, self.last + self._max_step)

    def _workspace(
        self, out: np.ndarray
    ) -> tuple[np.ndarray, bool, tuple[tuple[float, float, float], float] | None]:
        """Shorten the step from ``last`` to ``out`` until its end effector is in the box (or
        no further out than the last command's, if that one was out) and within the
        Cartesian rate limit; a step of zero (the last command) is always acceptable.

        Returns (command, shortened, (its end-effector point, its box excess) to keep if it
        is emitted; None: the last command's stand)."""
        if out.tobytes() == self.last.tobytes():  # holding: no kinematics needed
            return out, False, None
        ok, p, excess = self._cartesian_ok(out)
        if ok:
            return out, False, (p, excess)
        fracs = list(WORKSPACE_FRACTIONS)
        ee_step = self.limits.ee_step
        if ee_step is not None:
            moved = distance(p, self._p_last)
            if moved > ee_step:
                fracs.insert(0, 0.95 * ee_step / moved)
        for frac in fracs:
            if frac <= 0.0:
                break
            cand = self.last + frac * (out - self.last)
            ok, p, excess = self._cartesian_ok(cand)
            if ok:
                return cand, True, (p, excess)
        return self.last.copy(), True, None

    def _cartesian_ok(self, cmd: np.ndarray) -> tuple[bool, tuple[float, float, float], float]:
        """(acceptable, end-effector point (m), box excess (m)) of a command: inside the box
        (or no further out than the last command) and within the Cartesian step."""
        lim = self.limits
        p = lim.chain.position(cmd)
        excess = 0.0
        if self._box:
            ex = [
                lo - x if x < lo else x - hi if x > hi else 0.0
                for x, lo, hi in zip(p, lim.workspace_low, lim.workspace_high, strict=True)
            ]
            excess = ex[0] + ex[1] + ex[2]
        ok = excess <= self._ws_excess + BOX_SLACK
        if ok and lim.ee_step is not None:
            ok = distance(p, self._p_last) <= lim.ee_step
        return ok, p, excess

    # --- 5. e-stop -------------------------------------------------------------------------
    def _estop_hold(self, q: np.ndarray | None) -> np.ndarray:
        """Where the arm is when the e-stop engages (the measured position ``q``; the last
        command when there is none), held from then on until it is released."""
        if self._estop_target is None:
            self._estop_target = (self.last if q is None else q).copy()
        return self._estop_target

    # --- 6. last stage ---------------------------------------------------------------------
    def _last_stage_ok(self, out: np.ndarray) -> bool:
        """Every joint of ``out`` inside ``[q_min, q_max]`` and within the step of the last
        command (which is finite: the reset clipped a finite position, and every tick since
        emitted a command that passed this check). Each test is ``a <= b``, which NaN fails,
        and the step bound is finite, so an infinite command fails too."""
        lim = self.limits
        ok = (lim.q_min <= out) & (out <= lim.q_max) & (np.abs(out - self.last) <= self._final_step)
        return bool(ok.all())
