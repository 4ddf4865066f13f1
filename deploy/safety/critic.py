"""The learned safety critic at run time (onnxruntime, one thread, no torch).

``critic.onnx`` (written by ``deploy.export.critic``) judges the policy's command and its
recovery candidates in ONE call and does the selection inside the graph; ``CriticGuard`` is
what the safety filter calls as its stage 3:

    guard = load_critic("runs/critic/critic.onnx", robot_spec)   # refuses a mismatched contract
    filt = make_filter(limits, critic=guard)                      # both from deploy.safety.engines
    report = filt.tick(command, q, age, observation=obs)          # report.risk, report.choice

The filter judges a new policy command at once and an unchanged one every ``period_ticks``
ticks (``critic_hz`` of the contract), and reports the latest risk on every tick.
``OnnxCritic`` runs the graph in onnxruntime and is the reference; the C evaluator of the same
graph (``deploy.safety.native_critic.NativeOnnxCritic``) has its interface, and
``deploy.safety.engines.load_critic`` picks one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from deploy.runtime.bundle import read_onnx_metadata
from deploy.runtime.graph import OnnxGraph
from sim.contract import PolicyContract
from sim.integrity import verify
from sim.spec import JOINT_POS, TaskSpec, field_offset

CONTRACT_KEY = "spine.contract"
CRITIC_KEY = "spine.critic"
CANDIDATES = ("policy", "half", "quarter", "hold", "stop")  # then "sample<i>" recovery actions


def candidate_name(index: int) -> str:
    """Name of candidate ``index`` of the selection graph (-1: no critic)."""
    if index < 0:
        return "none"
    return CANDIDATES[index] if index < len(CANDIDATES) else f"sample{index - len(CANDIDATES)}"


class OnnxCritic:
    """``critic.onnx`` in onnxruntime: ``run(obs, action, hold, threshold)``.

    Args:
        path: the critic graph.
        robot: the robot's spec; a contract that differs is refused, naming the field.
        threads: onnxruntime intra-op threads.

    Attributes:
        engine: ``"onnxruntime"``; ``engine_note`` says why not native, where
            ``deploy.safety.engines.open_critic`` fell back.
        k: candidates judged per call; ``d``: the observation's size.
    """

    engine = "onnxruntime"

    def __init__(self, path: Path | str, robot: TaskSpec | None = None, threads: int = 1) -> None:
        self.path = path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"critic {path}: no such file")
        meta = read_onnx_metadata(path)
        for key in (CONTRACT_KEY, CRITIC_KEY):
            if key not in meta:
                raise ValueError(f"{path}: no {key!r} in metadata_props (not a Spine critic graph)")
        self.contract = PolicyContract.from_json(meta[CONTRACT_KEY], source=f"{path} metadata")
        if self.contract.family != "safety_critic":
            raise ValueError(f"{path}: contract family is {self.contract.family!r}, not 'safety_critic'")
        if robot is not None:
            self.contract.check_robot(robot)
        self.settings = json.loads(meta[CRITIC_KEY])
        if [t.name for t in self.contract.inputs] != ["observation", "anchors", "threshold"]:
            raise ValueError(
                f"{path}: critic inputs {[t.name for t in self.contract.inputs]} are an older graph "
                "format; re-export it (spine-export --critic, or deploy.export.critic.export_critic)"
            )
        verify(path)  # its weights are those it was exported with, else ValueError naming it
        self.graph = OnnxGraph(path, self.contract.inputs, self.contract.outputs, threads)
        ins, outs = self.graph.inputs, self.graph.outputs
        self.k = int(self.settings["candidates"])
        task = self.contract.task
        start = field_offset(task.observation, JOINT_POS)
        self._q = slice(start, start + task.n_joints)
        self._obs = ins["observation"][0]
        self.d = self._obs.size  # observation size
        self._action, self._hold, self._pos = ins["anchors"]
        self._thr = ins["threshold"]
        self._chosen, self._risk, self._choice = outs["chosen"][0], outs["risk"][0], outs["choice"]
        self.engine_note = ""

    def run(
        self, observation: np.ndarray, action: np.ndarray, hold: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """(risk of every candidate (K,), chosen joint targets (n,) float64, chosen index).

        The measured position (the stop candidate and the origin of every step) is the
        observation's ``joint_pos`` field, as in training.
        """
        self._obs[:] = observation
        self._action[:] = action
        self._hold[:] = hold
        self._pos[:] = self._obs[self._q]
        self._thr[0] = threshold
        self.graph.run()
        return self._risk.copy(), self._chosen.astype(np.float64), int(self._choice[0])

    run_onnxruntime = run  # the reference that the C evaluator is checked against


class CriticGuard:
    """Stage 3 of the filter: the critic plus its threshold and evaluation period.

    Args:
        critic: the loaded graph.
        threshold: risk above which a safer candidate is chosen (default: the graph's).
        period_ticks: filter ticks between evaluations of an unchanged command.
    """

    def __init__(self, critic: OnnxCritic, threshold: float | None = None, period_ticks: int = 1) -> None:
        self.critic = critic
        self.threshold = float(critic.settings["threshold"] if threshold is None else threshold)
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"critic threshold must be in (0, 1], got {self.threshold}")
        if period_ticks < 1:
            raise ValueError(f"critic period_ticks must be >= 1, got {period_ticks}")
        self.period_ticks = period_ticks
        self.last_risks = np.full(critic.k, math.nan)

    def evaluate(
        self, observation: np.ndarray, action: np.ndarray, hold: np.ndarray
    ) -> tuple[np.ndarray, float, int]:
        """(chosen command (n,) rad, risk of ``action``, chosen candidate index).

        The graph computes in float32: an observation that is not finite there (NaN, inf,
        or a finite float64 beyond float32's range, 1e39), or that is malformed (the wrong
        size, not real numbers), keeps the action and reports NaN (the filter's input guard
        has passed the command but the critic's inputs are bad): the deterministic stages
        still run. The filter hands over an action and a hold inside the position limits.
        """
        obs = _float32_observation(observation, self.critic.d)
        if obs is None or not math.isfinite(sum(obs.tolist())):
            return np.asarray(action, dtype=np.float64), math.nan, 0
        risks, chosen, choice = self.critic.run(obs, action, hold, self.threshold)
        self.last_risks = risks
        return chosen, float(risks[0]), choice


def _float32_observation(observation: object, size: int) -> np.ndarray | None:
    """``observation`` as the graph reads it, float32 ``(size,)`` (converted through float64,
    as the C tick converts it), or None if it is not ``size`` real numbers."""
    try:
        a = np.asarray(observation)
    except (TypeError, ValueError):
        return None
    if a.dtype.kind not in "fiu" or a.size != size:
        return None
    if a.dtype != np.float32:
        with np.errstate(over="ignore", invalid="ignore"):  # 1e39 -> inf: refused by the caller
            a = a.astype(np.float64, copy=False).astype(np.float32)
    return np.ascontiguousarray(a.reshape(-1))
