"""Log replay throughput: JointState decoding, Controller replay vs real time, a long log's report.

    .venv/bin/python benchmarks/replay_throughput.py [--messages 50000] [--minutes 10] [--rate 500]

1. Decode: a WidowX-like log (8-joint JointState, as the Interbotix SDK records them) written in
   each storage (rosbag2 MCAP, rosbag2 sqlite3, ROS 1) is read by Spine's mapped reader
   (``deploy.logs.mapped.read_mapped``: decode, match joints by name, check stamps and units), next to
   the baseline of a bare ``rosbags`` AnyReader loop that only deserializes. Target: >= 80k msg/s.
2. Replay: ``deploy.offline.evaluate.evaluate_log`` of a ``--minutes`` log at ``--rate`` Hz (rosbag2
   MCAP, then ROS 1; the SDK's custom waist command at 10 Hz) through a GCBC MLP bundle (3 x 256)
   and the safety filter, resampled to the policy rate (25 Hz). Figures: replay speed vs real time
   (target >= 500x) and the whole report's wall time, reading and plots included (target < 10 s
   for 10 minutes at 500 Hz).

``--record`` writes the table into its section of benchmarks/RESULTS.md (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from record import add_record_args, markdown_table, record
from rosbags.highlevel import AnyReader
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

sys.path.insert(0, str(Path(__file__).parents[1]))

from deploy.logs import messages as m
from deploy.logs.mapped import read_mapped
from deploy.logs.mapping import load_mapping, mapping_from_dict

ROOT = Path(__file__).parents[1]
MAPPING = ROOT / "configs" / "replay" / "widowx200.yaml"
NAMES = [
    "waist",
    "shoulder",
    "elbow",
    "wrist_angle",
    "wrist_rotate",
    "gripper",
    "left_finger",
    "right_finger",
]
SINGLE = "interbotix_xs_sdk/msg/JointSingleCommand"
LIMITS = ([-np.pi, -1.4, -1.9, -1.75, -np.pi], [np.pi, 1.98, 1.63, 2.15, np.pi])
T0 = 1_600_000_000_000_000_000


def waist(t: np.ndarray) -> np.ndarray:
    return 2.5 * np.sin(2 * np.pi * 0.1 * t)


def write_ros2(path: Path, n: int, rate: float, storage: StoragePlugin, commands: bool = False) -> None:
    """JointState at ``rate``; with ``commands``, the SDK's custom waist command at 10 Hz."""
    ts = get_typestore(Stores.ROS2_JAZZY)
    ts.register(get_types_from_msg("string name\nfloat32 cmd\n", SINGLE))
    every = max(1, round(rate / 10))
    with Writer(path, version=9, storage_plugin=storage) as w:
        conn = w.add_connection("/wx200/joint_states", m.JOINT_STATE, typestore=m.TYPESTORE)
        cmd = w.add_connection("/wx200/commands/joint_single", SINGLE, typestore=ts) if commands else None
        for i in range(n):
            t = T0 + round(i * 1e9 / rate)
            q = np.array([waist(i / rate), -1.1, 0.6, 1.3, 0.0, 0.8, 0.03, -0.03])
            w.write(conn, t, m.serialize(m.joint_state(t, NAMES, q, np.zeros(8))))
            if cmd is not None and i % every == 0:
                c = ts.types[SINGLE](name="waist", cmd=np.float32(waist(i / rate + 0.3)))
                w.write(cmd, t, ts.serialize_cdr(c, SINGLE))


def write_ros1(path: Path, n: int, rate: float) -> None:
    ts = get_typestore(Stores.ROS1_NOETIC)
    ts.register(get_types_from_msg("string name\nfloat32 cmd\n", SINGLE))
    T = ts.types
    every = max(1, round(rate / 10))
    with Ros1Writer(path) as w:
        js = w.add_connection("/wx200/joint_states", "sensor_msgs/msg/JointState", typestore=ts)
        cmd = w.add_connection("/wx200/commands/joint_single", SINGLE, typestore=ts)
        for i in range(n):
            t = T0 + round(i * 1e9 / rate)
            sec, nsec = divmod(t, 1_000_000_000)
            header = T["std_msgs/msg/Header"](
                seq=i, stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id=""
            )
            q = np.array([waist(i / rate), -1.1, 0.6, 1.3, 0.0, 0.8, 0.03, -0.03])
            msg = T["sensor_msgs/msg/JointState"](
                header=header, name=NAMES, position=q, velocity=np.zeros(8), effort=np.zeros(8)
            )
            w.write(js, t, ts.serialize_ros1(msg, msg.__msgtype__))
            if i % every == 0:
                c = T[SINGLE](name="waist", cmd=np.float32(waist(i / rate + 0.3)))
                w.write(cmd, t, ts.serialize_ros1(c, SINGLE))


def bare_decode(path: Path) -> float:
    """Baseline: messages/s of a bare AnyReader loop that only deserializes JointState."""
    t0 = time.perf_counter()
    n = 0
    with AnyReader([path], default_typestore=m.TYPESTORE) as r:
        conns = [c for c in r.connections if c.topic == "/wx200/joint_states"]
        for conn, _, raw in r.messages(connections=conns):
            r.deserialize(raw, conn.msgtype)
            n += 1
    return n / (time.perf_counter() - t0)


def spine_decode(path: Path) -> tuple[float, int]:
    """Spine's mapped reader: messages/s (JointState) and the count."""
    mapping = mapping_from_dict({"robot": "widowx_reach", "joint_states": {"topic": "/wx200/joint_states"}})
    t0 = time.perf_counter()
    log = read_mapped(path, mapping, NAMES[:5], *LIMITS)
    return len(log.joint_pos) / (time.perf_counter() - t0), len(log.joint_pos)


def mlp_bundle(work: Path) -> Path:
    """A GCBC MLP (3 x 256) trained briefly on the golden WidowX log, exported with spine-export."""
    from deploy.export.app import export_bundle
    from deploy.offline.log_dataset import log_to_dataset
    from policies.gcbc import GCBCConfig
    from policies.trainer import TrainConfig, train

    data = log_to_dataset(
        ROOT / "tests" / "artifacts" / "widowx_golden.bag", load_mapping(MAPPING), work / "data"
    )
    cfg = TrainConfig(
        dataset=str(data), out=str(work / "train"), steps=50, eval_every=50, eval_episodes=1, torch_threads=1
    )
    train(cfg, "widowx_reach", "gcbc", {}, GCBCConfig(hidden=256, layers=3, relabel=True))
    export_bundle(work / "train" / "checkpoint", work / "bundle", samples=32)
    return work / "bundle"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000, help="JointState messages per decode log")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the replayed log")
    ap.add_argument("--rate", type=float, default=500.0, help="joint-state rate of the replayed log (Hz)")
    ap.add_argument("--skip-replay", action="store_true", help="decode figures only")
    add_record_args(ap)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spine_bench_replay_"))
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f} (2 cores)")
    decoded: dict[str, tuple[float, float]] = {}  # storage -> (Spine msg/s, bare rosbags msg/s)
    replayed: dict[str, tuple[dict[str, Any], float]] = {}  # storage -> (report, whole report s)
    try:
        print(f"\n1. JointState decode, {args.messages} messages (8 joints)")
        print("| storage | bare rosbags deserialize (msg/s) | Spine read_mapped (msg/s) | ratio |")
        print("|---|---|---|---|")
        logs = {
            "rosbag2 MCAP": (
                work / "mcap",
                lambda p: write_ros2(p, args.messages, 100.0, StoragePlugin.MCAP),
            ),
            "rosbag2 sqlite3": (
                work / "sqlite",
                lambda p: write_ros2(p, args.messages, 100.0, StoragePlugin.SQLITE3),
            ),
            "ROS 1": (work / "log.bag", lambda p: write_ros1(p, args.messages, 100.0)),
        }
        for name, (path, write) in logs.items():
            write(path)
            base = max(bare_decode(path) for _ in range(2))
            ours = max(spine_decode(path)[0] for _ in range(2))
            print(f"| {name} | {base:,.0f} | {ours:,.0f} | {ours / base:.2f} |")
            decoded[name] = (ours, base)
        if args.skip_replay:
            if args.record:
                record_results(args, decoded, replayed, load)
            return
        from deploy.offline.evaluate import evaluate_log

        n = int(args.minutes * 60 * args.rate)
        bundle = mlp_bundle(work)
        long_logs = {
            "rosbag2 MCAP": (
                work / "long_mcap",
                lambda p: write_ros2(p, n, args.rate, StoragePlugin.MCAP, True),
            ),
            "ROS 1": (work / "long.bag", lambda p: write_ros1(p, n, args.rate)),
        }
        for name, (path, write) in long_logs.items():
            print(
                f"\n2. Replay of a {args.minutes:g}-minute log at {args.rate:g} Hz ({n} joint states, {name})"
            )
            t0 = time.perf_counter()
            write(path)
            print(f"(writing the log took {time.perf_counter() - t0:.1f} s; not part of the figures)")
            t0 = time.perf_counter()
            report = evaluate_log(path, bundle, load_mapping(MAPPING), work / "report")
            total = time.perf_counter() - t0
            print("| figure | value | target |")
            print("|---|---|---|")
            print(f"| JointState messages read | {report['stamps']['/wx200/joint_states']['messages']:,} | |")
            print(f"| read + decode + resample | {report['read_s']:.2f} s | |")
            print(
                f"| Controller replay (MLP + safety filter), {report['ticks_replayed']} ticks at 25 Hz | "
                f"{report['replay_wall_s']:.2f} s = {report['speed_vs_real_time']:.0f}x real time | >= 500x |"
            )
            print(
                f"| policy p50 / filter p50 | {report['policy_latency_us']['p50']:.1f} / "
                f"{report['filter_latency_us']['p50']:.1f} µs | |"
            )
            print(f"| whole report (read, FK, replay, JSON, markdown, 2 PNGs) | {total:.2f} s | < 10 s |")
            replayed[name] = (report, total)
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
        if args.record:
            record_results(args, decoded, replayed, load)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def record_results(
    args: argparse.Namespace,
    decoded: dict[str, tuple[float, float]],
    replayed: dict[str, tuple[dict[str, Any], float]],
    load: float,
) -> None:
    """The RESULTS.md table: one column per storage, one row per figure, and the targets."""
    storages = ("rosbag2 MCAP", "rosbag2 sqlite3", "ROS 1")

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    decode = {
        k: f"{ours:,.0f} msg/s ({base:,.0f}; {ours / base:.1f}x)" for k, (ours, base) in decoded.items()
    }
    rows = [
        {
            "figure": "JointState decode, Spine `read_mapped` (bare `rosbags` loop)",
            **decode,
            "target": ">= 80k: " + verdict(all(ours >= 80_000 for ours, _ in decoded.values())),
        }
    ]
    if replayed:
        ticks = next(iter(replayed.values()))[0]["ticks_replayed"]
        rows.append(
            {
                "figure": f"{args.minutes:g}-minute {args.rate:g} Hz log: Controller replay "
                f"(GCBC 3x256 + safety filter, {ticks:,} ticks)",
                **{k: f"{r['speed_vs_real_time']:.0f}x real time" for k, (r, _) in replayed.items()},
                "target": ">= 500x: "
                + verdict(all(r["speed_vs_real_time"] >= 500 for r, _ in replayed.values())),
            }
        )
        rows.append(
            {
                "figure": "same: whole report (read, FK, replay, JSON, markdown, 2 PNGs)",
                **{k: f"{total:.2f} s" for k, (_, total) in replayed.items()},
                "target": "< 10 s: " + verdict(all(total < 10 for _, total in replayed.values())),
            }
        )
    notes = (
        f"- {args.messages:,} JointState messages per decode log, best of 2 reads; load average "
        f"{load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end."
    )
    record(
        "replay_throughput",
        "JointState decoding"
        + (f", Controller replay and a {args.minutes:g}-minute log's report" if replayed else ""),
        markdown_table(rows, ["figure", *storages, "target"]),
        notes,
        path=args.results,
        packages=("rosbags", "onnxruntime", "mujoco"),
    )


if __name__ == "__main__":
    main()
