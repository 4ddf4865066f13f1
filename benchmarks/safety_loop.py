"""The safety filter's fast loop at 1 kHz, each configuration in its own process: tick lateness
(p50/p99/p99.9), overrun fraction and work per tick, side by side with an empty loop.

    .venv/bin/python benchmarks/safety_loop.py --critic runs/critic/reach_obstacles/critic.onnx \
        --seconds 60 --hz 1000 --warm-us 150 --spin-us 300 --out runs/safety_loop

Configurations: ``empty`` (the loop alone: the scheduling baseline), ``deterministic`` (all
deterministic stages incl. the workspace box and Cartesian rate limit on arm7's kinematics),
``critic`` (plus the learned critic, judging each new policy command at once and an
unchanged one at the contract's ``critic_hz``), both on the engine ``--engine`` picks (by
default the C engine of ``deploy.safety.native_filter`` with the critic graph in C), and
``deterministic_python`` / ``critic_python``, the numpy reference with the critic in
onnxruntime: the baseline, run side by side (skipped with ``--engine python``).

The loop sleeps to ``--spin-us`` before each deadline, then spins (``--spin-us 1000`` never
sleeps); with ``--warm-us`` it ticks the filter's shadow twin (``warm``) that long
before the deadline. The robot is a first-order joint model (no physics: the loop measures the
filter); the policy's command changes every 40 ms (25 Hz). Lateness: wake-up time minus the
deadline; an overrun: a tick whose work ended after the next deadline; a loop that falls behind
skips the deadlines it missed (counted in ``skipped_deadlines``) rather than bursting to catch
up. Work is the wall time of ``filter.tick``; its CPU time (``time.thread_time``) is reported
next to it, which leaves out preemption by other processes on a shared machine; "deadline ->
command" is lateness + work. ``--record`` writes the table into its section of
benchmarks/RESULTS.md (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from record import add_record_args, critic_calibration_note, markdown_table, record

SPIN_S = 200e-6  # default: spin this long before each deadline instead of sleeping
CONFIGS = ("empty", "deterministic_python", "critic_python", "deterministic", "critic")


def child(
    config: str,
    critic: str | None,
    seconds: float,
    hz: float,
    spin_s: float = SPIN_S,
    fifo: int | None = None,
    engine: str = "auto",
    warm_s: float = 0.0,
    safety: str = "default",
) -> dict[str, Any]:
    """Run one configuration's loop in this process; returns its raw figures."""
    import sim
    from deploy.runtime.realtime import realtime_setup
    from deploy.safety.config import load_safety_config
    from deploy.safety.engines import load_critic, make_filter
    from deploy.safety.model_limits import sim_limits
    from sim.observation import build_observation

    env = sim.make("reach_obstacles")
    env.reset(seed=0)
    spec, state = env.task_spec, env.state()
    obs = build_observation(state, spec.observation)
    config_ = load_safety_config(safety)  # the shipped configuration unless told otherwise
    limits = sim_limits(env, config_, tick_hz=hz)
    engine = "python" if config.endswith("_python") else engine
    critic_engine = "onnxruntime" if engine == "python" else "auto"
    guard = None
    if config.startswith("critic"):
        guard = load_critic(
            critic, spec, tick_hz=hz, engine=critic_engine, threshold=config_.critic_threshold
        )
    filt = make_filter(limits, critic=guard, engine=engine)
    q0 = state["joint_pos"].copy()
    filt.reset(q0)
    q = q0.copy()
    period, n = 1.0 / hz, int(seconds * hz)
    policy_every = max(1, round(hz / spec.control_hz))
    rng = np.random.default_rng(0)
    late = np.zeros(n)
    work = np.zeros(n)
    cpu = np.zeros(n)  # this thread's CPU time over the same span: work without preemption
    warm = np.zeros(n)  # wall time of the warm-up tick before the deadline (--warm-us)
    critic_ran = np.zeros(n, dtype=bool)
    cmd, cmd_tick = q0.copy(), 0
    gain = 1.0 - np.exp(-period / 0.05)  # joints follow the command with a 50 ms time constant
    realtime = realtime_setup(fifo)
    start = time.perf_counter() + 0.05
    skipped = 0
    k = 0  # grid index of the next deadline
    for i in range(n):
        deadline = start + k * period
        while (now := time.perf_counter()) < deadline - spin_s:
            time.sleep(max(0.0, deadline - spin_s - now))
        if warm_s > 0 and config != "empty":  # a shadow tick on the latest inputs
            while (now := time.perf_counter()) < deadline - warm_s:
                pass
            filt.warm(cmd, q, (i - cmd_tick) * period, observation=obs)
            warm[i] = time.perf_counter() - now
        while (now := time.perf_counter()) < deadline:
            pass
        late[i] = now - deadline
        if i % policy_every == 0:  # a new policy command (not counted as filter work)
            cmd = q + rng.normal(0.0, 0.02, q.size)
            cmd_tick = i
        obs[:7] = q  # joint_pos field of the observation
        c0, t0 = time.thread_time(), time.perf_counter()
        if config != "empty":
            report = filt.tick(cmd, q, (i - cmd_tick) * period, observation=obs)
            critic_ran[i] = report.critic_ran
            out = report.command
        else:
            out = cmd
        work[i], cpu[i] = time.perf_counter() - t0, time.thread_time() - c0
        q = q + gain * (out - q)
        behind = int((time.perf_counter() - start) / period) - k  # grid deadlines already passed
        skipped += max(0, behind - 1)
        k += max(1, behind)  # a late loop skips the deadlines it missed instead of bursting
    overrun = late + work > period
    return {
        "skipped_deadlines": skipped,
        "config": config,
        "ticks": n,
        "hz": hz,
        "late_us": (late * 1e6).tolist(),
        "work_us": (work * 1e6).tolist(),
        "cpu_us": (cpu * 1e6).tolist(),
        "warm_us": (warm * 1e6).tolist(),
        "critic_ran": critic_ran.tolist(),
        "overrun_fraction": float(overrun.mean()),
        "sched_fifo": realtime,
        "engine": ""
        if config == "empty"
        else filt.engine + (f" + {guard.critic.engine} critic" if guard else ""),
    }


def pct(x: np.ndarray) -> dict[str, float]:
    if x.size == 0:
        return {}
    p = np.percentile(x, [50, 99, 99.9])
    return {"p50": float(p[0]), "p99": float(p[1]), "p99.9": float(p[2]), "max": float(x.max())}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    late, work = np.asarray(raw["late_us"]), np.asarray(raw["work_us"])
    ran = np.asarray(raw["critic_ran"])
    return {
        "config": raw["config"],
        "ticks": raw["ticks"],
        "lateness_us": pct(late),
        "response_us": pct(late + work),  # deadline -> safe command
        "work_us": pct(work),
        "work_cpu_us": pct(np.asarray(raw["cpu_us"])),
        "warm_us": pct(np.asarray(raw.get("warm_us", [0.0]))),
        "work_us_critic_ticks": pct(work[ran]),
        "critic_tick_fraction": float(ran.mean()),
        "overrun_fraction": raw["overrun_fraction"],
        "skipped_deadlines": raw["skipped_deadlines"],
        "sched_fifo": raw.get("sched_fifo", False),
        "engine": raw.get("engine", ""),
    }


def plot(path: Path, raws: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.logspace(-1, 4, 80)
    for r in raws:
        style = {"histtype": "step", "label": r["config"], "color": f"C{CONFIGS.index(r['config'])}"}
        a1.hist(np.maximum(r["late_us"], 0.1), bins=bins, **style)
        if r["config"] != "empty":
            a2.hist(np.maximum(r["work_us"], 0.1), bins=bins, **style)
    a1.set(
        xscale="log", yscale="log", xlabel="tick lateness (µs)", ylabel="ticks", title="1 kHz loop lateness"
    )
    a2.set(xscale="log", yscale="log", xlabel="work per tick (µs)", title="filter work per tick")
    a2.axvline(100, color="k", ls="--", lw=1)
    for a in (a1, a2):
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--critic", help="critic.onnx (without it: no critic configuration)")
    ap.add_argument("--seconds", type=float, default=60.0, help="loop duration per configuration")
    ap.add_argument("--hz", type=float, default=1000.0, help="loop rate")
    ap.add_argument("--out", type=Path, default=Path("runs/safety_loop"))
    ap.add_argument(
        "--spin-us",
        type=float,
        default=SPIN_S * 1e6,
        help="busy-wait this long before each deadline "
        "(>= the period: never sleep, a dedicated core's caches stay warm)",
    )
    ap.add_argument(
        "--fifo", type=int, help="run each loop under SCHED_FIFO at this priority (1-99; needs root)"
    )
    ap.add_argument(
        "--engine",
        choices=("auto", "native", "python"),
        default="auto",
        help="engine of the deterministic and critic configurations (deploy.safety.engines.make_filter)",
    )
    ap.add_argument(
        "--warm-us",
        type=float,
        default=0.0,
        help="tick the filter's shadow twin this long before each deadline (the filter's warm; "
        "0: off); must be < --spin-us",
    )
    ap.add_argument(
        "--safety", default="default", help="configs/safety/ name or YAML (default: the shipped one)"
    )
    ap.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    add_record_args(ap)
    args = ap.parse_args(argv)
    if args.warm_us and args.warm_us >= args.spin_us:
        ap.error("--warm-us must be below --spin-us (the warm-up runs in the spin before a deadline)")
    if args.child:
        raw = child(
            args.child,
            args.critic,
            args.seconds,
            args.hz,
            args.spin_us * 1e-6,
            args.fifo,
            args.engine,
            args.warm_us * 1e-6,
            args.safety,
        )
        Path(args.out).write_text(json.dumps(raw))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    raws = []
    for config in CONFIGS:
        if config.startswith("critic") and not args.critic:
            continue
        if config.endswith("_python") and args.engine == "python":
            continue
        raw_path = args.out / f"{config}.raw.json"
        cmd = [
            sys.executable,
            __file__,
            "--child",
            config,
            "--seconds",
            str(args.seconds),
            "--hz",
            str(args.hz),
            "--spin-us",
            str(args.spin_us),
            "--engine",
            args.engine,
            "--warm-us",
            str(args.warm_us),
        ]
        cmd += ["--fifo", str(args.fifo)] if args.fifo else []
        cmd += ["--safety", args.safety]
        cmd += ["--out", str(raw_path)] + (["--critic", args.critic] if args.critic else [])
        print(f"{config}: {args.seconds:g} s at {args.hz:g} Hz in its own process ...", flush=True)
        subprocess.run(cmd, check=True)
        raws.append(json.loads(raw_path.read_text()))
        raw_path.unlink()
    rows = [summarize(r) for r in raws]
    base = rows[0]["lateness_us"]["p99"]
    for r in rows:
        r["lateness_p99_vs_empty"] = r["lateness_us"]["p99"] / base if base > 0 else None
    (args.out / "safety_loop.json").write_text(json.dumps(rows, indent=2))
    plot(args.out / "safety_loop.png", raws)
    print(table(rows))
    if args.record:
        record_rows(rows, args)
    return 0


def name(row: dict[str, Any]) -> str:
    engine = f" [{row['engine']}]" if row.get("engine") else ""
    return row["config"] + engine + (" (SCHED_FIFO)" if row.get("sched_fifo") else "")


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the summarized configurations."""
    lines = [
        "| config | lateness p50/p99/p99.9 (µs) | overrun | work p50/p99/p99.9 (µs) "
        "| deadline -> command p50/p99 (µs) | critic ticks "
        "| work p99 on critic ticks (µs) | CPU time per tick p50/p99 (µs) | warm-up p50/p99 (µs) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        la, w, wc = r["lateness_us"], r["work_us"], r["work_us_critic_ticks"]
        lines.append(
            f"| {name(r)} | {la['p50']:.0f} / {la['p99']:.0f} / {la['p99.9']:.0f} "
            f"| {r['overrun_fraction']:.3%} | {w['p50']:.1f} / {w['p99']:.1f} / {w['p99.9']:.1f} "
            f"| {r['response_us']['p50']:.0f} / {r['response_us']['p99']:.0f} "
            f"| {r['critic_tick_fraction']:.1%} | {wc.get('p99', float('nan')):.1f} "
            f"| {r['work_cpu_us']['p50']:.1f} / {r['work_cpu_us']['p99']:.1f} "
            f"| {r['warm_us']['p50']:.1f} / {r['warm_us']['p99']:.1f} |"
        )
    return "\n".join(lines)


ENGINES = {"native": "C", "python": "Python", "onnxruntime": "onnxruntime"}


def label(row: dict[str, Any]) -> str:
    """A configuration as RESULTS.md names it: "deterministic, C", "+ critic, Python + onnxruntime"."""
    if row["config"] == "empty":
        return "empty loop"
    filt, _, critic = row["engine"].partition(" + ")
    engine = ENGINES.get(filt, filt)
    critic = ENGINES.get(critic.removesuffix(" critic"), critic)
    name = f"deterministic, {engine}" if row["config"].startswith("deterministic") else "+ critic, "
    if row["config"].startswith("critic"):
        name += engine if critic == engine else f"{engine} + {critic}"
    return name + (" (SCHED_FIFO)" if row.get("sched_fifo") else "")


def record_rows(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The RESULTS.md table (benchmarks/record.py): the figures the targets judge, per configuration."""
    table_rows = []
    for r in rows:
        work, response = r["work_us"], r["response_us"]
        table_rows.append(
            {
                "configuration": label(r),
                "lateness p99 (µs)": f"{r['lateness_us']['p99']:.0f}",
                "overrun (target <= 0.5 %)": f"{100 * r['overrun_fraction']:.3f} %",
                "work p50 / p99 / p99.9 (µs) (target p99 <= 100)": " / ".join(
                    f"{work[k]:.1f}" for k in ("p50", "p99", "p99.9")
                ),
                "deadline -> command p50 / p99 (µs)": f"{response['p50']:.0f} / {response['p99']:.0f}",
            }
        )
    notes = [
        f"{args.seconds:g} s per configuration at {args.hz:g} Hz, spin {args.spin_us:g} µs, warm-up "
        f"{args.warm_us:g} µs before each deadline, safety configuration `{args.safety}`"
        + (f", SCHED_FIFO {args.fifo}" if args.fifo else "")
        + "."
    ]
    for r in rows:
        if r["config"] in ("deterministic", "critic"):  # the engine --engine picked
            met = r["work_us"]["p99"] <= 100 and r["overrun_fraction"] <= 0.005
            verdict = "met" if met else "missed"
            notes.append(f"{label(r)}: targets (work p99 <= 100 µs, overrun <= 0.5 %) **{verdict}**.")
    notes += critic_calibration_note(args.critic)
    record(
        "safety_loop",
        "The filter's 1 kHz loop, each configuration in its own process",
        markdown_table(table_rows),
        "\n".join(f"- {n}" for n in notes),
        path=args.results,
        packages=("onnxruntime", "mujoco"),
    )


if __name__ == "__main__":
    sys.exit(main())
