"""``spine-stack``: the ROS 2 node set over Cyclone DDS on a machine without ROS.

    spine-stack --params-file configs/ros/stack.yaml --out runs/stack [--domain-id 42] [-p episodes:=20]
    spine-stack --task maze --bundle runs/maze/bundle --out runs/stack_maze

Starts the recorder, the sim robot, the safety node and the policy node as separate processes
(the same set as ``launch/spine.launch.py``), waits for the sim robot to finish its episodes,
stops the rest with SIGINT, and prints the success rate. Writes ``<out>/bag`` (MCAP),
``<out>/sim_summary.json`` and each node's log ``<out>/<node>.log``. Loopback only unless
``--network``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

NODES = {
    "recorder": "ros_nodes.recorder_node",
    "sim_robot": "ros_nodes.sim_robot_node",
    "safety": "ros_nodes.safety_node",
    "policy": "ros_nodes.policy_node",
}


HEALTH_FILE = "safety_health.json"
QOS_ERROR = "ERROR: QoS incompatible"  # what a port prints on an incompatible-QoS event
REFUSED = re.compile(r"Remote secure participant (\S+) not allowed")  # Cyclone's security log


def loopback_uri() -> str:
    """Cyclone DDS config: 127.0.0.1 only, unicast discovery (lo has no multicast)."""
    return (
        "<CycloneDDS><Domain id='any'><General><Interfaces><NetworkInterface address='127.0.0.1'/>"
        "</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery>"
        "<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>60</MaxAutoParticipantIndex>"
        "<Peers><Peer address='127.0.0.1'/></Peers></Discovery></Domain></CycloneDDS>"
    )


def node_env(domain_id: int, loopback: bool = True, keystore: Path | None = None) -> dict[str, str]:
    """The nodes' environment: the domain, loopback-only Cyclone DDS, and with ``keystore`` the
    ROS 2 security variables (every node then runs with its own enclave, docs/security.md)."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED="1")
    for var in ("ROS_SECURITY_ENABLE", "ROS_SECURITY_KEYSTORE", "ROS_SECURITY_ENCLAVE_OVERRIDE"):
        env.pop(var, None)
    if loopback:
        env["CYCLONEDDS_URI"] = loopback_uri()
    if keystore is not None:
        env.update(
            ROS_SECURITY_ENABLE="true",
            ROS_SECURITY_STRATEGY="Enforce",
            ROS_SECURITY_KEYSTORE=str(Path(keystore).resolve()),
        )
    return env


@dataclass
class Stack:
    """Running node processes (one per node) and where their logs go."""

    out: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, node: str, args: Sequence[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.out / f"{node}.log"
        self.logs[node] = log
        with log.open("w") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", NODES[node], "--transport", "dds", *args],
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.procs[node] = proc
        return proc

    def stop(self, node: str, timeout: float = 10.0) -> int | None:
        """SIGINT (clean shutdown: files closed), then SIGKILL after ``timeout`` s."""
        proc = self.procs[node]
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for node in reversed(list(self.procs)):
            self.stop(node)

    def log(self, node: str) -> str:
        return self.logs[node].read_text() if node in self.logs else ""

    def refused_participants(self) -> set[str]:
        """GUIDs of remote participants DDS Security refused, as far as Cyclone logged them (it
        logs some refusals of participants with credentials it does not accept, not all: a
        count of what was seen, not of every attempt; a participant with no credentials is
        never logged)."""
        found = (REFUSED.search(line) for node in self.procs for line in self.log(node).splitlines())
        return {m.group(1) for m in found if m}

    def qos_errors(self) -> list[str]:
        """The incompatible-QoS lines every node's port has printed so far."""
        return [line for node in self.procs for line in self.log(node).splitlines() if QOS_ERROR in line]


def start_stack(
    out: Path,
    params_file: Path,
    domain_id: int,
    overrides: dict[str, Sequence[str]] | None = None,
    nodes: Sequence[str] = tuple(NODES),
    loopback: bool = True,
    keystore: Path | None = None,
) -> Stack:
    """Start ``nodes`` (in order) with the parameter file and per-node ``-p`` overrides; with
    ``keystore``, each on DDS Security with its own enclave."""
    out.mkdir(parents=True, exist_ok=True)
    stack = Stack(out)
    env = node_env(domain_id, loopback, keystore)
    defaults = {
        "recorder": [f"out:={out / 'bag'}"],
        "sim_robot": [f"summary_path:={out / 'sim_summary.json'}"],
        "safety": [f"health_path:={out / HEALTH_FILE}"],
    }
    for node in nodes:
        ps = [*defaults.get(node, []), *(overrides or {}).get(node, [])]
        args = ["--ros-args", "--params-file", str(params_file)]
        for p in ps:
            args += ["-p", p]
        stack.start(node, args, env)
    return stack


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spine-stack", description=__doc__.splitlines()[0])
    ap.add_argument("--params-file", type=Path, default=Path("configs/ros/stack.yaml"))
    ap.add_argument("--out", type=Path, default=Path("runs/stack"))
    ap.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0")))
    ap.add_argument(
        "-p", dest="sim_params", action="append", default=[], help="sim robot parameter name:=value"
    )
    ap.add_argument(
        "--task",
        help="registered task the sim robot runs; the nodes' robot becomes its spec (overrides the file's "
        "task and robot)",
    )
    ap.add_argument(
        "--bundle", help="policy bundle for the policy, safety and sim robot nodes (overrides the file's)"
    )
    ap.add_argument("--no-recorder", action="store_true", help="do not record a bag")
    ap.add_argument(
        "--keystore",
        type=Path,
        help="DDS Security keystore (spine-keystore create DIR); without it: no security",
    )
    ap.add_argument("--network", action="store_true", help="use Cyclone's default interfaces, not loopback")
    args = ap.parse_args(argv)
    if (args.out / "bag").exists() and not args.no_recorder:
        print(f"spine-stack: {args.out / 'bag'} exists; choose another --out", file=sys.stderr)
        return 1
    nodes = [n for n in NODES if not (n == "recorder" and args.no_recorder)]
    if args.keystore is not None:
        from ros_nodes.security.keystore import is_keystore

        if not is_keystore(args.keystore):
            print(f"spine-stack: {args.keystore} is no keystore (spine-keystore create DIR)", file=sys.stderr)
            return 1
    else:
        print(
            "spine-stack: WARNING: no --keystore: the nodes run WITHOUT DDS Security, and any participant "
            f"on DDS domain {args.domain_id} can command the robot (docs/security.md)",
            file=sys.stderr,
        )
    overrides: dict[str, list[str]] = {"sim_robot": [], "policy": [], "safety": []}
    if args.task:
        overrides["sim_robot"].append(f"task:={args.task}")
        for node in overrides:
            overrides[node].append(f"robot:={args.task}")
    if args.bundle:
        for node in overrides:  # the sim robot builds the task as the bundle was trained on it
            overrides[node].append(f"bundle:={args.bundle}")
    overrides["sim_robot"] += args.sim_params
    stack = start_stack(
        args.out,
        args.params_file,
        args.domain_id,
        overrides,
        nodes,
        not args.network,
        args.keystore,
    )
    secure = f"secure (keystore {args.keystore})" if args.keystore else "NOT secure"
    print(f"spine-stack: {', '.join(nodes)} on DDS domain {args.domain_id}, {secure}; logs in {args.out}")

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # stop the nodes cleanly on SIGTERM too
    try:
        sim = stack.procs["sim_robot"]
        while sim.poll() is None:
            failed = [n for n, p in stack.procs.items() if p.poll() not in (None, 0)]
            if failed:
                print(f"spine-stack: {failed[0]} exited:\n{stack.log(failed[0])}", file=sys.stderr)
                return 1
            qos = stack.qos_errors()
            if qos:
                print(
                    "spine-stack: FAILED: endpoints whose QoS never match (their messages are lost; "
                    "docs/ros.md, QoS):\n" + "\n".join(qos),
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.2)
        if sim.returncode != 0:
            log = stack.log("sim_robot")
            print(f"spine-stack: sim_robot exited with {sim.returncode}:\n{log}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop_all()
    summary_path = args.out / "sim_summary.json"
    if summary_path.is_file():
        s = json.loads(summary_path.read_text())
        print(
            f"spine-stack: success {s['success_rate']:.0%} over {s['episodes']} goals; bag {args.out / 'bag'}"
        )
    if args.keystore is not None:
        print(f"spine-stack: participants refused by DDS Security: {len(stack.refused_participants())}")
    return report_health(args.out / HEALTH_FILE)


def report_health(path: Path) -> int:
    """Print the safety loop's health (written by the safety node at exit); 1 when it is
    missing or the loop saw QoS incompatibilities (a peer that never connected)."""
    if not path.is_file():
        print(f"spine-stack: the safety node wrote no health report ({path})", file=sys.stderr)
        return 1
    h = json.loads(path.read_text())
    print("spine-stack: safety loop health: " + ", ".join(f"{k} {v}" for k, v in h.items()))
    if h.get("qos_incompatible"):
        print(
            f"spine-stack: FAILED: {h['qos_incompatible']} incompatible-QoS event(s): a peer never "
            "connected (see safety.log and docs/ros.md, QoS)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
