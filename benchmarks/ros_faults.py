"""Faults injected into the real stack: spine-stack's nodes (sim robot, safety node at 1 kHz,
policy node) as separate processes over Cyclone DDS on loopback, with the shipped safety
configuration, and DDS Security when a keystore can be made here.

    .venv/bin/python benchmarks/ros_faults.py [--faults nan_policy,policy_sigkill] [--out runs/ros_faults]

Each fault runs in a fresh stack: wait until the safety node tracks the policy, inject, watch,
stop. A judge participant (a permitted subscriber) checks every command the robot receives
against the robot's limits with code that shares nothing with the filter (limits read from the
robot and safety YAML files as plain numbers) and counts messages from strangers that reached a
permitted reader. Per fault: commands outside the envelope (must be 0), stranger messages that
reached the robot's side (must be 0), time to hold and to damp (from the safety node's
/diagnostics), loop overruns during the fault, and whether every node survived. ``--record``
writes the table into its section of benchmarks/RESULTS.md (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from record import add_record_args, record, system_package_version
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploy.logs import messages as m  # noqa: E402
from ros_nodes.dds import DdsPort  # noqa: E402
from ros_nodes.params import ParameterStore  # noqa: E402
from ros_nodes.port import QoS  # noqa: E402
from ros_nodes.security.keystore import enclave_dir  # noqa: E402
from ros_nodes.security.policy import OPERATOR  # noqa: E402
from ros_nodes.stack import loopback_uri, start_stack  # noqa: E402
from ros_nodes.topics import BOOL, SAFETY_STATUS, TOPIC_ESTOP, bool_msg  # noqa: E402

ROBOT = REPO / "configs/ros/arm7_reach.yaml"
SAFETY = REPO / "configs/safety/default.yaml"
BUNDLE = REPO / "tests/ros_nodes/data/reach_gcbc"
RATE_HZ = 1000.0
STRANGER = np.full(7, -0.123456789)  # a command no Spine node ever sends
HOLDING = ("hold", "guard", "estop", "damp")
ANY_RELIABILITY = (QoS(reliable=False, depth=10), QoS(reliable=True, depth=10))


def independent_limits() -> dict[str, np.ndarray]:
    """The envelope from the robot and safety YAML files, read as plain numbers."""
    yaml = YAML(typ="safe", pure=True)
    robot, safety = yaml.load(ROBOT.read_text()), yaml.load(SAFETY.read_text())
    margin = float(safety["margin"])
    return {
        "low": np.array(robot["joint_pos_min"], dtype=float) + margin,
        "high": np.array(robot["joint_pos_max"], dtype=float) - margin,
        "step": np.array(robot["joint_vel_max"], dtype=float) / RATE_HZ,
    }


@dataclass
class Judge:
    """A permitted subscriber on the robot's side of every topic."""

    port: DdsPort
    limits: dict[str, np.ndarray]
    commands: int = 0
    outside: int = 0
    stranger: int = 0
    last: tuple[int, np.ndarray] | None = None
    diags: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    estops: list[bool] = field(default_factory=list)
    first_bad_ns: int | None = None  # when the first non-finite or absurd policy command arrived
    first_estop_ns: int | None = None  # when the first engaging e-stop arrived

    def __post_init__(self) -> None:
        best_effort = QoS(reliable=False, depth=100)  # reads reliable and best-effort writers alike
        self.port.subscribe(m.TOPIC_COMMAND, m.FLOAT64_ARRAY, self._command, best_effort)
        self.port.subscribe(m.TOPIC_POLICY_CMD, m.FLOAT64_ARRAY, self._policy, best_effort)
        self.port.subscribe(TOPIC_ESTOP, BOOL, self._estop, best_effort)
        self.port.subscribe(m.TOPIC_DIAGNOSTICS, m.DIAGNOSTICS, self._diag, QoS(reliable=True, depth=100))

    def _command(self, msg: Any, rx: Any) -> None:
        cmd = np.asarray(msg.data, dtype=float)
        if cmd.shape == STRANGER.shape and np.array_equal(cmd, STRANGER):
            self.stranger += 1
            return
        self.commands += 1
        lim = self.limits
        ok = cmd.shape == lim["low"].shape and bool(np.all(np.isfinite(cmd)))
        ok = ok and bool(np.all(cmd >= lim["low"] - 1e-12) and np.all(cmd <= lim["high"] + 1e-12))
        if ok and self.last is not None and rx.source_ns != self.last[0]:
            ticks = max(1, math.ceil((rx.source_ns - self.last[0]) * RATE_HZ / 1e9 + 1e-6))
            ok = bool(np.all(np.abs(cmd - self.last[1]) <= ticks * lim["step"] * (1 + 1e-9) + 1e-12))
        self.outside += not ok
        self.last = (rx.source_ns, cmd)

    def _policy(self, msg: Any, rx: Any) -> None:
        data = np.asarray(msg.data, dtype=float)
        self.stranger += data.shape == STRANGER.shape and bool(np.array_equal(data, STRANGER))
        if self.first_bad_ns is None and not np.all(np.abs(data) < 1e30):  # NaN, inf, 1e39
            self.first_bad_ns = rx.received_ns

    def _estop(self, msg: Any, rx: Any) -> None:
        self.estops.append(bool(msg.data))
        if msg.data and self.first_estop_ns is None:
            self.first_estop_ns = rx.received_ns

    def _diag(self, msg: Any, rx: Any) -> None:
        for s in msg.status:
            if s.name == SAFETY_STATUS:
                self.diags.append((m.stamp_ns(msg), {kv.key: kv.value for kv in s.values}))

    def mode(self) -> str:
        return self.diags[-1][1]["mode"] if self.diags else ""

    def first(self, modes: tuple[str, ...], after_ns: int) -> float | None:
        """ms from ``after_ns`` to the first diagnostic in one of ``modes`` (None: never)."""
        for t, v in self.diags:
            if t > after_ns and v["mode"] in modes:
                return (t - after_ns) / 1e6
        return None

    def overruns(self) -> int:
        return int(self.diags[-1][1]["overruns"]) if self.diags else 0

    def ticks(self) -> int:
        return int(self.diags[-1][1]["ticks"]) if self.diags else 0


@dataclass
class Ctx:
    """One fault run: the stack, the judge, the domain and where the enclaves are."""

    stack: Any
    judge: Judge
    domain: int
    keystore: Path | None
    out: Path
    notes: list[str] = field(default_factory=list)
    t_inject: int | None = None  # wall time (ns) the fault began: its first message, or the signal

    def injected(self, t_ns: int | None = None) -> None:
        """The fault begins now (or at ``t_ns``), unless it began earlier."""
        t = time.time_ns() if t_ns is None else t_ns
        self.t_inject = t if self.t_inject is None else min(self.t_inject, t)

    def spin(self, seconds: float) -> None:
        self.judge.port.spin_for(seconds)

    def agent(self, action: str, identity: str | None, seconds: float = 0.5, wait: bool = True) -> Any:
        """Run ``action`` in a participant of its own process (DDS Security: one identity per
        process) as ``identity`` (an enclave name; None: no credentials); the judge keeps
        spinning meanwhile."""
        cmd = [
            sys.executable,
            __file__,
            "--agent",
            action,
            "--domain",
            str(self.domain),
            "--seconds",
            str(seconds),
        ]
        if identity is not None and self.keystore is not None:
            cmd += ["--enclave", str(enclave_dir(self.keystore, identity))]
        env = dict(os.environ, CYCLONEDDS_URI=loopback_uri(), PYTHONUNBUFFERED="1")
        path = self.out / f"agent_{action}_{(identity or 'anonymous').strip('/').replace('/', '_')}.log"
        with path.open("w") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        while wait and proc.poll() is None:
            self.spin(0.05)
        if wait:
            for line in path.read_text().splitlines():
                if line.startswith("{") and "first_ns" in line:
                    self.injected(json.loads(line)["first_ns"])
        return proc

    def strangers(self) -> list[str | None]:
        """No credentials and, with security, credentials without permission."""
        return [None, INTRUDER] if self.keystore is not None else [None]


INTRUDER = "/intruder"
MONITOR = "/spine/monitor"


def fault_unauthorized_command(ctx: Ctx) -> None:
    for who in ctx.strangers():
        ctx.agent("command", who)


def fault_unauthorized_policy(ctx: Ctx) -> None:
    for who in ctx.strangers():
        ctx.agent("policy", who)


def fault_unauthorized_estop_release(ctx: Ctx) -> None:
    ctx.agent("estop_engage", OPERATOR, 0.3)
    ctx.spin(0.3)
    before = len(ctx.judge.estops)
    for who in ctx.strangers():
        ctx.agent("estop_release", who)
    ctx.spin(0.2)
    ctx.judge.stranger += sum(not v for v in ctx.judge.estops[before:])
    mode = ctx.judge.mode()
    ctx.notes.append(f"mode after the strangers' releases: {mode}")
    ctx.judge.stranger += mode != "estop"
    ctx.agent("estop_release", OPERATOR, 0.3)


def fault_nan_policy(ctx: Ctx) -> None:
    ctx.agent("nan_policy", "/spine/policy", 1.0)


def fault_huge_policy(ctx: Ctx) -> None:
    ctx.agent("huge_policy", "/spine/policy", 1.0)


def fault_flood_8mb(ctx: Ctx) -> None:
    ctx.agent("flood", "/spine/policy", 1.0)


def fault_none(ctx: Ctx) -> None:
    """The baseline: nothing happens for 2 s."""
    ctx.injected()
    ctx.spin(2.0)


def fault_policy_sigkill(ctx: Ctx) -> None:
    ctx.injected()
    ctx.stack.procs["policy"].send_signal(signal.SIGKILL)
    ctx.spin(1.0)


def _pause(ctx: Ctx, node: str, seconds: float) -> None:
    """Stop ``node``'s process (SIGSTOP) for ``seconds``, then let it go on."""
    proc = ctx.stack.procs[node]
    ctx.injected()
    proc.send_signal(signal.SIGSTOP)
    ctx.spin(seconds)
    proc.send_signal(signal.SIGCONT)


def fault_policy_sigstop(ctx: Ctx) -> None:
    _pause(ctx, "policy", 1.0)


def fault_participant_leaves(ctx: Ctx) -> None:
    """Participants join (readers and writers on the stack's topics) and vanish without a
    goodbye (killed), five times."""
    ctx.injected()
    for _ in range(5):
        proc = ctx.agent("visit", "/spine/sim_robot", 5.0, wait=False)
        ctx.spin(0.6)
        proc.kill()
        proc.wait()


def fault_clock_jump(ctx: Ctx) -> None:
    """Joint states stamped 100 s ahead (a sensor clock that jumped): the real ones are then
    out of order, dropped, and the guard holds once the state is older than the timeout."""
    ctx.agent("sensor_jump", "/spine/sim_robot", 0.3)
    ctx.spin(0.5)


def fault_clock_back(ctx: Ctx) -> None:
    ctx.agent("sensor_back", "/spine/sim_robot", 0.5)


def fault_sensor_stops(ctx: Ctx) -> None:
    _pause(ctx, "sim_robot", 0.5)


def _sensor_stopped(ctx: Ctx, action: str) -> None:
    proc = ctx.stack.procs["sim_robot"]
    proc.send_signal(signal.SIGSTOP)
    try:
        ctx.agent(action, "/spine/sim_robot", 0.5)
    finally:
        proc.send_signal(signal.SIGCONT)


def fault_nan_sensor(ctx: Ctx) -> None:
    _sensor_stopped(ctx, "sensor_nan")


def fault_frozen_sensor(ctx: Ctx) -> None:
    _sensor_stopped(ctx, "sensor_frozen")


FAULTS: dict[str, Callable[[Ctx], None]] = {
    "none": fault_none,
    "unauthorized_command": fault_unauthorized_command,
    "unauthorized_policy_command": fault_unauthorized_policy,
    "unauthorized_estop_release": fault_unauthorized_estop_release,
    "nan_policy": fault_nan_policy,
    "huge_policy_1e39": fault_huge_policy,
    "flood_8mb": fault_flood_8mb,
    "policy_sigkill": fault_policy_sigkill,
    "policy_sigstop": fault_policy_sigstop,
    "participant_leaves": fault_participant_leaves,
    "clock_jump_forward": fault_clock_jump,
    "clock_back": fault_clock_back,
    "sensor_stops": fault_sensor_stops,
    "nan_sensor": fault_nan_sensor,
    "frozen_sensor": fault_frozen_sensor,
}


# --- agents: one participant per process ---------------------------------------------------
def _writers(port: DdsPort, topic: str, msgtype: str) -> list[Any]:
    """A best-effort and a reliable writer (one of them matches whatever the reader uses);
    none where the middleware refuses them (no permission)."""
    out = []
    for qos in ANY_RELIABILITY:
        try:
            out.append(port.publisher(topic, msgtype, qos))
        except Exception as e:  # a secure participant without permission is refused here
            print(json.dumps({"topic": topic, "denied": f"{type(e).__name__}: {e}"}), flush=True)
            return []
    return out


def _pulse(port: DdsPort, writers: list[Any], msg: Callable[[], Any], seconds: float, hz: float) -> int:
    n, end = 0, time.monotonic() + seconds
    print(json.dumps({"first_ns": time.time_ns()}), flush=True)
    while time.monotonic() < end:
        for w in writers:
            w.publish(msg())
        n += 1
        port.spin_for(1.0 / hz)
    return n


HOME = np.array([0.0, 0.3, 0.0, -1.8, 0.0, 2.0, 0.8])  # a pose away from where the arm tracks


def agent(action: str, domain: int, enclave: Path | None, seconds: float) -> int:
    port = DdsPort(f"agent_{action}", ParameterStore(f"agent_{action}"), domain_id=domain, enclave=enclave)
    names = [f"joint{i}" for i in range(1, 8)]
    array = m.float64_array
    topics = {
        "command": (m.TOPIC_COMMAND, m.FLOAT64_ARRAY, lambda: array(STRANGER), 200),
        "policy": (m.TOPIC_POLICY_CMD, m.FLOAT64_ARRAY, lambda: array(STRANGER), 200),
        "nan_policy": (m.TOPIC_POLICY_CMD, m.FLOAT64_ARRAY, lambda: array(np.full(7, np.nan)), 200),
        "huge_policy": (m.TOPIC_POLICY_CMD, m.FLOAT64_ARRAY, lambda: array(np.full(7, 1e39)), 200),
        "flood": (m.TOPIC_POLICY_CMD, m.FLOAT64_ARRAY, lambda: array(np.zeros(1_000_000)), 5 / seconds),
        "estop_engage": (TOPIC_ESTOP, BOOL, lambda: bool_msg(True), 20),
        "estop_release": (TOPIC_ESTOP, BOOL, lambda: bool_msg(False), 50),
        "visit": (m.TOPIC_COMMAND, m.FLOAT64_ARRAY, lambda: array(STRANGER), 1),
        "sensor_jump": (m.TOPIC_JOINT_STATES, m.JOINT_STATE, lambda: m.joint_state(
            time.time_ns() + 100 * 10**9, names, HOME, np.zeros(7)), 500),
        "sensor_back": (m.TOPIC_JOINT_STATES, m.JOINT_STATE, lambda: m.joint_state(
            time.time_ns() - 100 * 10**9, names, HOME, np.zeros(7)), 500),
        "sensor_nan": (m.TOPIC_JOINT_STATES, m.JOINT_STATE, lambda: m.joint_state(
            time.time_ns(), names, np.full(7, np.nan), np.zeros(7)), 500),
        "sensor_frozen": (m.TOPIC_JOINT_STATES, m.JOINT_STATE, lambda: m.joint_state(
            time.time_ns(), names, HOME, np.zeros(7)), 500),
    }  # fmt: skip
    topic, msgtype, msg, hz = topics[action]
    if action == "visit":  # readers too, then stay until killed
        port.subscribe(m.TOPIC_JOINT_STATES, m.JOINT_STATE, lambda *_: None, QoS())
        port.subscribe(m.TOPIC_DIAGNOSTICS, m.DIAGNOSTICS, lambda *_: None, QoS(reliable=True))
    writers = _writers(port, topic, msgtype)
    sent = _pulse(port, writers, msg, seconds, hz)
    print(json.dumps({"action": action, "sent": sent, "writers": len(writers)}), flush=True)
    port.close()
    return 0


# --- one fault ---------------------------------------------------------------------------------
def make_keystore(path: Path) -> Path | None:
    """Spine's keystore plus a monitor (reads everything) and an intruder (valid identity, no
    permission for Spine's topics); None where DDS Security cannot run here."""
    try:
        from ros_nodes.security import SecurityUnavailable, create_enclave, plugin_dir
        from ros_nodes.security.policy import create_spine_keystore

        plugin_dir()
    except (ImportError, SecurityUnavailable) as e:
        print(f"DDS Security unavailable, running without it: {e}", file=sys.stderr)
        return None
    create_spine_keystore(path)
    create_enclave(path, MONITOR, [], ["rt/*"])
    create_enclave(path, INTRUDER, ["rt/chatter"], ["rt/chatter"])
    return path


def run_fault(name: str, domain: int, out: Path, secure: bool) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    params = out / "params.yaml"
    params.write_text(
        f"/**:\n  ros__parameters:\n    robot: {ROBOT}\n    bundle: {BUNDLE}\n"
        f"spine_safety:\n  ros__parameters:\n    rate_hz: {RATE_HZ}\n"
        "spine_sim_robot:\n  ros__parameters:\n    episode_s: 4.0\n    seed: 3\n"
    )
    keystore = make_keystore(out / "keystore") if secure else None
    stack = start_stack(out, params, domain, nodes=("sim_robot", "safety", "policy"), keystore=keystore)
    enclave = enclave_dir(keystore, MONITOR) if keystore else None
    port = DdsPort("monitor", ParameterStore("monitor"), domain_id=domain, enclave=enclave)
    judge = Judge(port, independent_limits())
    ctx = Ctx(stack, judge, domain, keystore, out, ["secure" if keystore else "NOT secure"])
    row: dict[str, Any] = {"fault": name}
    try:
        end = time.monotonic() + 90
        while not (judge.mode() == "track" and judge.commands > 1000):
            if time.monotonic() > end:
                raise RuntimeError(f"{name}: the stack never tracked\n{stack.log('safety')[-2000:]}")
            ctx.spin(0.1)
        overruns0, ticks0 = judge.overruns(), judge.ticks()
        FAULTS[name](ctx)
        ctx.spin(1.5)
        for t in (judge.first_bad_ns, judge.first_estop_ns):  # the first message that arrived
            if t is not None:
                ctx.t_inject = t
        t0 = ctx.t_inject or time.time_ns()
        alive = {
            n: p.poll() is None for n, p in stack.procs.items() if not (n == "policy" and "kill" in name)
        }
        row.update(
            commands=judge.commands,
            outside_envelope=judge.outside,
            strangers_reached=judge.stranger,
            hold_ms=judge.first(HOLDING, t0),
            damp_ms=judge.first(("damp",), t0),
            overruns=judge.overruns() - overruns0,
            ticks=judge.ticks() - ticks0,
            nodes_alive=all(alive.values()),
            notes="; ".join(ctx.notes),
        )
    finally:
        port.close()
        stack.stop_all()
    return row


def table(rows: list[dict[str, Any]]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    lines = [
        "| fault | commands checked | outside envelope | from strangers | hold (ms) | damp (ms) "
        "| overruns / ticks | nodes alive |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['fault']} | {r.get('commands', 0)} | {r.get('outside_envelope', '?')} | "
            f"{r.get('strangers_reached', '?')} | {ms(r.get('hold_ms'))} | {ms(r.get('damp_ms'))} | "
            f"{r.get('overruns', '?')} / {r.get('ticks', '?')} | {'yes' if r.get('nodes_alive') else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", default=",".join(FAULTS), help="comma-separated, default: all")
    ap.add_argument("--out", type=Path, default=Path("runs/ros_faults"))
    ap.add_argument("--domain", type=int, default=170, help="first DDS domain id (one per fault)")
    ap.add_argument("--no-security", action="store_true", help="run the stack without DDS Security")
    ap.add_argument("--agent", help=argparse.SUPPRESS)
    ap.add_argument("--enclave", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=0.5, help=argparse.SUPPRESS)
    add_record_args(ap)
    args = ap.parse_args(argv)
    os.environ["CYCLONEDDS_URI"] = loopback_uri()  # this process's participants: loopback too
    if args.agent:
        return agent(args.agent, args.domain, Path(args.enclave) if args.enclave else None, args.seconds)
    rows = []
    for i, name in enumerate(args.faults.split(",")):
        print(f"{name} ...", flush=True)
        row = run_fault(name, args.domain + i, args.out / name, not args.no_security)
        print(f"  {row}", flush=True)
        rows.append(row)
    text = table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ros_faults.json").write_text(json.dumps(rows, indent=2))
    (args.out / "ros_faults.md").write_text(text + "\n")
    print(text)
    bad = [
        r["fault"]
        for r in rows
        if r.get("outside_envelope") or r.get("strangers_reached") or not r.get("nodes_alive")
    ]
    if bad:
        print(f"FAULTS THAT GOT THROUGH: {bad}", file=sys.stderr)
    if args.record:
        record_rows(rows, bad, args.results)
    return 1 if bad else 0


def record_rows(rows: list[dict[str, Any]], bad: list[str], path: Path | None) -> None:
    """The table into RESULTS.md, with what every row shows (or which faults got through) and
    whether the stacks ran on DDS Security (each row's first note)."""
    secure = all(str(r.get("notes", "")).startswith("secure") for r in rows)
    if bad:
        verdict = (
            f"**Faults that got through** (commands outside the envelope, strangers, a node lost): {bad}."
        )
    else:
        verdict = (
            "Every row: 0 commands outside the envelope, 0 stranger messages on the robot's side, "
            "every node alive."
        )
    base = next((r for r in rows if r["fault"] == "none" and r.get("ticks")), None)
    notes = [verdict, "DDS Security on (one enclave per node)." if secure else "**Without DDS Security.**"]
    if base is not None:
        notes.append(
            f"Baseline overruns (no fault): {100 * base['overruns'] / base['ticks']:.2f} % of ticks."
        )
    notes.append(f"Cyclone DDS C library {system_package_version('libddsc0debian') or 'not from Debian'}.")
    record(
        "ros_faults",
        "Each fault in a fresh " + ("secure " if secure else "") + "stack: the robot's commands checked, "
        "the watchdog timed",
        table(rows),
        "\n".join(f"- {n}" for n in notes),
        path=path,
        packages=("cyclonedds", "onnxruntime"),
    )


if __name__ == "__main__":
    sys.exit(main())
