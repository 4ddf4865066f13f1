"""The ROS 2 node stack over Cyclone DDS on loopback: sensor-to-command latency, safety loop
overruns, and the DDS round trip, each next to its baseline.

    .venv/bin/python benchmarks/stack_latency.py --seconds 30 --out runs/bench/stack_latency

1. Stack (``spine-stack``'s processes: sim robot, safety node, policy node; no recorder) for
   ``--seconds``. Sensor-to-command latency: from the sim robot stamping a joint state to the
   sim robot receiving the first command the safety node computed from it (joined on the DDS
   source timestamp of each command; later ticks reusing the same joint state are left out);
   it includes waiting for the next safety tick (up to one tick). Overrun: a safety tick whose
   work ended after the next tick's deadline.
   Targets (issue 7): p50 <= 1 ms, p99 <= 3 ms, overrun <= 0.5 %.
2. DDS round trip, 12-joint JointState ping-pong with a second process: through the port
   (rosbags messages both ways; ``wire="cdr"``, the nodes' default: rosbags' CDR handed to
   Cyclone, and ``wire="idl"``: converted to IDL structs that cyclonedds serializes) vs raw
   Cyclone DDS (IDL samples written and taken directly, no conversion): the port's cost.

Writes ``<out>/stack_latency.json`` and ``<out>/stack_latency.png``; prints a table for RESULTS.md
and with ``--record`` writes its row into its section there (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from record import add_record_args, code_version, markdown_table, record, system_package_version
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ros_nodes.stack import loopback_uri, node_env, start_stack  # noqa: E402

DOMAIN_STACK, DOMAIN_PING = 61, 62
PING_N, PING_WARMUP = 2000, 200


def pct(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return {"n": 0}
    p50, p99, p999 = np.percentile(x, [50, 99, 99.9])
    return {"n": int(x.size), "p50": p50, "p99": p99, "p999": p999, "max": float(x.max())}


# --- 1. the stack ---------------------------------------------------------------------------
def run_stack(
    out: Path,
    bundle: Path,
    seconds: float,
    rate_hz: float,
    spin_us: float,
    critic: Path | None = None,
    rt_priority: int = 0,
) -> dict[str, Any]:
    params = out / "params.yaml"
    critic_line = f"    critic: {critic.resolve()}\n" if critic else ""
    params.write_text(
        "/**:\n  ros__parameters:\n"
        f"    robot: {REPO / 'configs/ros/arm7_reach.yaml'}\n    bundle: {bundle}\n"
        f"spine_safety:\n  ros__parameters:\n    rate_hz: {rate_hz}\n    spin_us: {spin_us}\n"
        f"    rt_priority: {rt_priority}\n"
        f"    stats_path: {out / 'safety_stats.npz'}\n{critic_line}"
        f"spine_sim_robot:\n  ros__parameters:\n    stats_path: {out / 'sim_stats.npz'}\n"
        f"    summary_path: {out / 'sim_summary.json'}\n"
    )
    stack = start_stack(out, params, DOMAIN_STACK, nodes=("sim_robot", "safety", "policy"))
    try:
        for _ in tqdm(range(int(seconds * 10)), desc="stack", unit="0.1 s"):
            time.sleep(0.1)
            dead = [n for n, p in stack.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited:\n{stack.log(dead[0])}")
    finally:
        stack.stop_all()
    safety = np.load(out / "safety_stats.npz")
    sim = np.load(out / "sim_stats.npz")
    return analyse(safety, sim, rate_hz, json.loads((out / "sim_summary.json").read_text()))


def analyse(safety: Any, sim: Any, rate_hz: float, summary: dict[str, Any]) -> dict[str, Any]:
    pub, state_ns = safety["publish_ns"], safety["state_ns"]
    late, work = safety["late_ns"], safety["work_ns"]
    period_ns = 1e9 / rate_hz
    skip = int(rate_hz)  # the first second: start-up
    overrun = (late[skip:] + work[skip:]) > period_ns
    # join each received command to the safety tick that published it (source ts >= publish ts)
    src, rx = sim["source_ns"], sim["received_ns"]
    idx = np.searchsorted(pub, src, side="right") - 1
    first_use = np.r_[True, state_ns[1:] != state_ns[:-1]]  # the first tick to use each joint state
    i = np.clip(idx, 0, None)
    ok = (idx >= skip) & (src - pub[i] < 900_000) & first_use[i]  # stamped within that tick
    latency_ms = (rx[ok] - state_ns[idx[ok]]) / 1e6
    one_way_ms = (rx[ok] - src[ok]) / 1e6
    return {
        "sensor_to_command_ms": pct(latency_ms),
        "command_one_way_ms": pct(one_way_ms),
        "safety_ticks": int(pub.size),
        "overrun_fraction": float(overrun.mean()) if overrun.size else float("nan"),
        "missed_deadlines": int(safety["overruns"]),
        "tick_lateness_us": pct(late[skip:] / 1e3),
        "tick_work_us": pct(work[skip:] / 1e3),
        "commands_received": int(src.size),
        "commands_joined": int(ok.sum()),
        "goals": summary["episodes"],
        "success_rate": summary["success_rate"],
        "joint_state_hz": summary["joint_state_hz"],
        "_latency_ms": latency_ms.tolist(),
        "_lateness_us": (late[skip:] / 1e3).tolist(),
    }


# --- 2. DDS round trip ------------------------------------------------------------------------
def _joint_state() -> Any:
    from deploy.logs import messages as m

    names = [f"j{i}" for i in range(12)]
    return m.joint_state(time.time_ns(), names, np.linspace(-1, 1, 12), np.zeros(12))


def echo(mode: str) -> None:
    """Child process: send every ping back as a pong, until killed."""
    if mode.startswith("port-"):
        from deploy.logs import messages as m
        from ros_nodes.dds import DdsPort
        from ros_nodes.params import ParameterStore
        from ros_nodes.port import QoS

        port = DdsPort("echo", ParameterStore("echo"), DOMAIN_PING, wire=mode[5:])
        pong = port.publisher("/bench/pong", m.JOINT_STATE, QoS(depth=1))
        port.subscribe("/bench/ping", m.JOINT_STATE, lambda msg, rx: pong.publish(msg), QoS(depth=1))
        port.spin()
    else:
        w, r, ws = _raw_endpoints("/bench/pong", "/bench/ping")
        while True:
            ws.wait(1_000_000_000)
            for sample in r.take(N=16):
                w.write(sample)


def _raw_endpoints(out_topic: str, in_topic: str) -> Any:
    from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    from ros_nodes.dds import dds_qos, dds_topic
    from ros_nodes.idl import IDL_TYPES
    from ros_nodes.port import QoS

    joint_state = IDL_TYPES["sensor_msgs/msg/JointState"]
    dp = DomainParticipant(DOMAIN_PING)
    qos = QoS(depth=1)
    w = DataWriter(dp, Topic(dp, dds_topic(out_topic), joint_state), qos=dds_qos(qos, True))
    r = DataReader(dp, Topic(dp, dds_topic(in_topic), joint_state), qos=dds_qos(qos, False))
    ws = WaitSet(dp)
    ws.attach(ReadCondition(r, SampleState.NotRead | ViewState.Any | InstanceState.Any))
    return w, r, ws


def ping(mode: str) -> np.ndarray:
    """Round trips (µs) of PING_N JointStates through ``mode`` (``port-cdr``, ``port-idl``, ``raw``)."""
    env = node_env(DOMAIN_PING)
    child = subprocess.Popen([sys.executable, __file__, "--echo", mode], env=env)
    rtt: list[float] = []
    try:
        if mode.startswith("port-"):
            from deploy.logs import messages as m
            from ros_nodes.dds import DdsPort
            from ros_nodes.params import ParameterStore
            from ros_nodes.port import QoS

            port = DdsPort("ping", ParameterStore("ping"), DOMAIN_PING, wire=mode[5:])
            pub = port.publisher("/bench/ping", m.JOINT_STATE, QoS(depth=1))
            got: list[int] = []
            port.subscribe(
                "/bench/pong", m.JOINT_STATE, lambda msg, rx: got.append(rx.received_ns), QoS(depth=1)
            )
            send, wait = (lambda: pub.publish(_joint_state())), (lambda: port.spin_for(0.0005))
        else:
            from ros_nodes.convert import to_idl

            w, r, ws = _raw_endpoints("/bench/ping", "/bench/pong")
            got = []
            sample = to_idl(_joint_state())

            def send() -> None:
                w.write(sample)

            def wait() -> None:
                ws.wait(500_000)
                got.extend(time.time_ns() for _ in r.take(N=16))

        for i in tqdm(range(PING_N + PING_WARMUP), desc=f"ping {mode}", unit="msg", mininterval=1.0):
            n, t0 = len(got), time.time_ns()
            send()
            end = time.monotonic() + (5.0 if i < 5 else 0.2)
            while len(got) == n and time.monotonic() < end:
                wait()
            if len(got) > n and i >= PING_WARMUP:
                rtt.append((got[-1] - t0) / 1e3)
            time.sleep(0.0005)
    finally:
        child.kill()
        child.wait()
    return np.array(rtt)


def plot(path: Path, stack: dict[str, Any], rtt: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    lat = np.array(stack["_latency_ms"])
    ax[0].hist(lat, bins=100, range=(0, max(3.5, float(np.percentile(lat, 99.5)))), color="C0")
    for v, ls in ((1.0, "--"), (3.0, ":")):
        ax[0].axvline(v, color="k", ls=ls, lw=1)
    ax[0].set(
        xlabel="sensor -> command (ms)", ylabel="commands", title="stack latency (targets p50 1, p99 3)"
    )
    late = np.array(stack["_lateness_us"])
    ax[1].hist(late, bins=100, range=(0, max(1000.0, float(np.percentile(late, 99.9)))), color="C1", log=True)
    ax[1].set(xlabel="safety tick lateness (µs)", ylabel="ticks", title="safety loop wake-up")
    for i, (k, v) in enumerate(rtt.items()):
        ax[2].hist(v, bins=100, range=(0, 1500), alpha=0.6, color=f"C{i + 2}", label=k)
    ax[2].set(xlabel="round trip (µs)", ylabel="messages", title="DDS JointState ping-pong")
    if rtt:
        ax[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="stack run time (s)")
    ap.add_argument("--bundle", type=Path, default=REPO / "tests/ros_nodes/data/reach_gcbc")
    ap.add_argument("--rate-hz", type=float, default=1000.0, help="safety loop rate")
    ap.add_argument("--spin-us", type=float, default=0.0, help="safety node's busy-wait before each tick")
    ap.add_argument("--critic", type=Path, help="the safety node also runs this critic.onnx (arm7 reach)")
    ap.add_argument("--rt-priority", type=int, default=0, help="safety node SCHED_FIFO priority (0: off)")
    ap.add_argument("--no-ping", action="store_true", help="skip the DDS round-trip part (minutes)")
    ap.add_argument("--out", type=Path, default=REPO / "runs/bench/stack_latency")
    ap.add_argument("--echo", help=argparse.SUPPRESS)
    add_record_args(ap)
    args = ap.parse_args()
    if args.echo:
        os.environ.setdefault("CYCLONEDDS_URI", loopback_uri())
        echo(args.echo)
        return 0
    os.environ["CYCLONEDDS_URI"] = loopback_uri()
    args.out.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    stack = run_stack(
        args.out, args.bundle, args.seconds, args.rate_hz, args.spin_us, args.critic, args.rt_priority
    )
    rtt = {} if args.no_ping else {mode: ping(mode) for mode in ("raw", "port-cdr", "port-idl")}
    load1 = os.getloadavg()[0]
    result = {k: v for k, v in stack.items() if not k.startswith("_")}
    result["rtt_us"] = {k: pct(v) for k, v in rtt.items()}
    result["load_average"] = [load0, load1]
    result["args"] = {
        "seconds": args.seconds,
        "rate_hz": args.rate_hz,
        "spin_us": args.spin_us,
        "critic": str(args.critic) if args.critic else None,
        "rt_priority": args.rt_priority,
    }
    (args.out / "stack_latency.json").write_text(json.dumps(result, indent=2))
    plot(args.out / "stack_latency.png", stack, rtt)
    lat, work = result["sensor_to_command_ms"], result["tick_work_us"]
    goals = f"{result['goals']} goals, success {result['success_rate']:.0%}"
    goals += f"; joint states at {result['joint_state_hz']:.0f} Hz"
    print(f"load average {load0:.2f} -> {load1:.2f}; {goals}")
    print("| what | p50 | p99 | p99.9 | baseline / target | ratio |")
    print("|---|---|---|---|---|---|")
    print(
        f"| sensor -> command (ms) | {lat['p50']:.3f} | {lat['p99']:.3f} | {lat['p999']:.3f} "
        f"| target p50 1, p99 3 | {lat['p50'] / 1.0:.2f}x / {lat['p99'] / 3.0:.2f}x of target |"
    )
    print(
        f"| safety overrun ({result['safety_ticks']} ticks at {args.rate_hz:.0f} Hz) "
        f"| {100 * result['overrun_fraction']:.2f} % | | | target 0.5 % | |"
    )
    print(
        f"| safety tick work{' with the critic' if args.critic else ''} (µs) | {work['p50']:.1f} "
        f"| {work['p99']:.1f} | {work['p999']:.1f} | target p99 100 | {work['p99'] / 100:.2f}x of target |"
    )
    for mode in ("port-cdr", "port-idl") if rtt else ():
        p, r = result["rtt_us"][mode], result["rtt_us"]["raw"]
        print(
            f"| DDS RTT, {mode} (µs) | {p['p50']:.0f} | {p['p99']:.0f} | {p['p999']:.0f} "
            f"| raw Cyclone p50 {r['p50']:.0f}, p99 {r['p99']:.0f} | {p['p50'] / r['p50']:.2f}x |"
        )
    print(f"wrote {args.out / 'stack_latency.json'}, {args.out / 'stack_latency.png'}")
    if args.record:
        record_result(args, result)
    return 0


def record_result(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """This run as one row of the RESULTS.md table (code, latency, overrun, tick work), the
    targets met or missed in the notes."""
    lat, work, rtt = result["sensor_to_command_ms"], result["tick_work_us"], result["rtt_us"]
    code = f"{code_version()}, {args.seconds:g} s" + (", critic on every tick" if args.critic else "")
    if args.rt_priority:
        code += f", SCHED_FIFO {args.rt_priority}"
    if rtt:
        code += (
            f", + ping-pong (DDS RTT port-cdr p50 {rtt['port-cdr']['p50']:.0f} µs, "
            f"port-idl {rtt['port-idl']['p50']:.0f} µs, raw Cyclone {rtt['raw']['p50']:.0f} µs)"
        )
    row = {
        "code": code,
        "sensor -> command p50 / p99 (ms)": f"{lat['p50']:.2f} / {lat['p99']:.2f}",
        "safety overrun": f"{100 * result['overrun_fraction']:.2f} %",
        "tick work p50 / p99 (µs)": f"{work['p50']:.0f} / {work['p99']:.0f}",
    }

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    load0, load1 = result["load_average"]
    cyclone = system_package_version("libddsc0debian") or "not from Debian"
    notes = [
        f"Targets: p50 <= 1 ms {verdict(lat['p50'] <= 1.0)}, p99 <= 3 ms {verdict(lat['p99'] <= 3.0)}, "
        f"overrun <= 0.5 % {verdict(result['overrun_fraction'] <= 0.005)}.",
        f"{result['safety_ticks']} safety ticks at {args.rate_hz:g} Hz (spin {args.spin_us:g} µs), "
        f"{result['commands_joined']} commands joined to their joint state; {result['goals']} goals, "
        f"success {result['success_rate']:.0%}; load average {load0:.2f} -> {load1:.2f}; Cyclone DDS C "
        f"library {cyclone}.",
    ]
    record(
        "stack_latency",
        "Sensor -> command latency and the 1 kHz safety node over Cyclone DDS",
        markdown_table([row]),
        "\n".join(f"- {n}" for n in notes),
        path=args.results,
        packages=("cyclonedds", "onnxruntime"),
    )


if __name__ == "__main__":
    sys.exit(main())
