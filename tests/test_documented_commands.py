"""Every command README.md and docs/*.md show in a shell block runs, from a clean copy of the
repository, in document order (issue 22: "a test runs every documented command").

Commands are the lines of ```bash, ```sh, ```shell and ```console blocks (console: the lines
after ``$ ``), continuation lines joined, comments dropped, whitespace collapsed. Each one is in
``PLAN``: run as documented (``AS_IS``), run with small settings (``Small``: the concrete command,
e.g. fewer steps or episodes, optional ``[...]`` flags written out, placeholders filled in), run in
the background for a few seconds (``Daemon``: ROS nodes that run until stopped; then SIGINT, exit
status 0), run and expected to fail with a message (``Refused``), or exempt with the reason
(``Exempt``: ROS 2's own tools, the test suite itself). A command in no table, a table entry no
document shows any more, and an untagged block of commands fail
``test_every_documented_command_has_a_plan``, so new docs cannot escape it. Shell variables and
exports (``LOG=...``, ``export MENAGERIE_ROOT=...``) hold for the commands after them in the
same file, as in one shell.

The clean copy: the files git tracks or would track (the working tree, uncommitted changes
included), nothing it ignores (no ``runs/``, no build outputs, no ``.venv``). In it, as
``./spine.sh setup`` would leave it (CI runs the setup itself, ``.ci/run``): the C extension
built in place (``setup.py build_ext --inplace``, what ``pip install -e`` does), and ``.venv/``
made of links to this venv (interpreter, console scripts, site-packages) and the setup's stamp,
so ``./spine.sh`` goes straight to its command (pip is set to a dry run besides: nothing can
reinstall this venv). The commands run with ``PATH`` as ``source .venv/bin/activate`` sets it,
the copy first on ``PYTHONPATH`` (its code, not this checkout's, is what runs: checked), ``HOME``
and a DDS domain of their own, ``../shared/`` beside the copy (a link: the robot models and the
real log), no ``MENAGERIE_ROOT`` unless a document exports it, and the user's Warp kernel cache.

Each file runs in its own copy, two files at a time (2 cores). A file whose commands use another
file's outputs names it in ``REQUIRES`` and starts from a copy of that file's copy when it has
finished (``docs/export.md`` exports the README's checkpoint). ``-m docs`` selects these tests;
``-k 'documented_commands and replay'`` one file (and what it requires). Needs ``../shared/data``
(the real WidowX log, the Menagerie arms): skipped with that reason where it is absent.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.ros_nodes.domains import fresh_domain

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console"}
WORKERS = 2  # files run at once
TAIL = 3000  # characters of a failed command's output in the report

pytestmark = pytest.mark.docs


# -- what each documented command becomes ---------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Run it (``command``: instead of the documented text) and expect exit status 0."""

    command: str | None = None
    timeout: float = 300.0
    once: bool = False  # not again in a copy whose earlier file already ran it (./spine.sh demo)
    needs: str | None = None  # a path the checkout must hold (an optional environment), else skipped


@dataclass(frozen=True)
class Daemon:
    """Start it in the background; ``seconds`` later (with the other daemons of its block) it is
    sent SIGINT and must exit with status 0, as a node stopped with Ctrl-C does."""

    command: str | None = None
    seconds: float = 6.0


@dataclass(frozen=True)
class Refused:
    """Run it and expect a non-zero exit status with ``message`` in its output."""

    message: str
    command: str | None = None


@dataclass(frozen=True)
class Exempt:
    reason: str


def _one_line(text: str) -> str:
    return " ".join(text.split())


AS_IS = Run()


def Small(command: str, timeout: float = 300.0, once: bool = False, needs: str | None = None) -> Run:
    """The documented command with small settings (written over lines as in the docs)."""
    return Run(_one_line(command), timeout, once, needs)


NO_ROS2 = "ROS 2 itself (the ros2 CLI, rclpy) cannot be installed on our machines"
# the demo's other steps have fixed sizes (spine.sh): 300 expert episodes, a 3000-step critic
DEMO = Small(
    "./spine.sh demo steps=200 eval_every=200 eval_episodes=2 policy.hidden=64", timeout=900, once=True
)
TINY_TRAIN = "steps=200 eval_every=200 eval_episodes=2 policy.hidden=64"
TINY_CRITIC = "data.episodes=8 critic.steps=100"
TINY_STACK = "-p episodes:=1 -p episode_s:=2.0"
ISAAC = ".venv-isaac"  # docs/isaac.md's environment (./spine.sh setup-isaac)

_PLAN: list[tuple[str, Run | Daemon | Refused | Exempt]] = [
    # README.md: quick start
    ("./spine.sh demo", DEMO),
    ("./spine.sh test", Exempt("the whole test suite, this test included; CI runs it (.ci/run)")),
    # README.md: commands
    (
        "spine-collect task=reach episodes=300 seed=0 out=runs/data [action_noise=0.02] [task.control_hz=50]",
        Small(
            "spine-collect task=reach episodes=8 seed=0 out=runs/data action_noise=0.02 task.control_hz=50"
        ),
    ),
    (
        "spine-collect task=maze mode=navigate episodes=100 action_noise=0.1",
        Small("spine-collect task=maze mode=navigate episodes=4 action_noise=0.1"),
    ),
    (
        "spine-collect task=reach episodes=10000 num_envs=16 threads=2 randomization=default",
        Small("spine-collect task=reach episodes=32 num_envs=16 threads=2 randomization=default"),
    ),
    (
        """spine-train task=reach policy=gcbc dataset=runs/data/reach.npz out=runs/train
        steps=20000 batch_size=256 eval_every=5000 eval_episodes=20 seed=0 policy.hidden=256""",
        Small("""spine-train task=reach policy=gcbc dataset=runs/data/reach.npz out=runs/train
        steps=200 batch_size=256 eval_every=200 eval_episodes=2 seed=0 policy.hidden=256"""),
    ),
    (
        "spine-train-critic task=reach out=runs/critic data.episodes=400 critic.steps=4000",
        Small(f"spine-train-critic task=reach out=runs/critic {TINY_CRITIC}"),
    ),
    ("spine-export runs/critic/checkpoint --out runs/critic", AS_IS),
    (
        """spine-export runs/train/checkpoint --out runs/bundle [--tolerance 1e-4] [--eval-episodes 50]
        [--quantize int8] [--critic runs/critic/critic.onnx]""",
        Small("""spine-export runs/train/checkpoint --out runs/bundle --tolerance 1e-4 --eval-episodes 2
        --quantize int8 --critic runs/critic/critic.onnx"""),
    ),
    (
        """spine-run runs/bundle --task reach --episodes 20 --seed 1000 --log runs/run
        [--storage mcap|sqlite3] [--video ep0.mp4] [--chunk-mode receding|ensemble]
        [--critic critic.onnx | --no-critic]""",
        # --video renders in software, ~20 s an episode here: tests/sim/test_video.py covers it
        Small("""spine-run runs/bundle --task reach --episodes 2 --seed 1000 --log runs/run --storage sqlite3
        --chunk-mode receding --critic runs/critic/critic.onnx"""),
    ),
    (
        "spine-replay runs/run/log --bundle runs/bundle --out runs/replay [--goal 0.5,0.0,0.3]",
        Small("spine-replay runs/run/log --bundle runs/bundle --out runs/replay --goal 0.5,0.0,0.3"),
    ),
    ("spine-log-dataset $LOG --mapping $MAP --out runs/wx/data --end 70", AS_IS),
    (
        "spine-log-sim $LOG --mapping $MAP --out runs/wx/sysid",
        Small("spine-log-sim $LOG --mapping $MAP --out runs/wx/sysid --maxfev 10"),
    ),
    (
        """spine-train task=widowx_reach policy=gcbc dataset=runs/wx/data/widowx_reach_log.npz
        out=runs/wx/train policy.relabel=true""",
        Small(f"""spine-train task=widowx_reach policy=gcbc dataset=runs/wx/data/widowx_reach_log.npz
        out=runs/wx/train policy.relabel=true {TINY_TRAIN}"""),
    ),
    (
        "spine-export runs/wx/train/checkpoint --out runs/wx/bundle",
        Small("spine-export runs/wx/train/checkpoint --out runs/wx/bundle --samples 64"),
    ),
    ("spine-replay $LOG --bundle runs/wx/bundle --mapping $MAP --out runs/wx/eval --start 70", AS_IS),
    ("spine-keystore create runs/keystore", AS_IS),
    (
        """spine-stack --params-file configs/ros/stack.yaml --out runs/stack_secure -p episodes:=20
        --keystore runs/keystore""",
        Small(f"""spine-stack --params-file configs/ros/stack.yaml --out runs/stack_secure {TINY_STACK}
        --keystore runs/keystore"""),
    ),
    # README.md: development
    (".venv/bin/ruff check . && .venv/bin/ruff format --check .", AS_IS),
    (
        '.venv/bin/pytest -m "not slow"',
        Exempt("the fast half of the test suite, this test's plan check included"),
    ),
    (".venv/bin/pytest -m docs", Exempt("this test")),
    (
        ".venv/bin/python benchmarks/inference_latency.py",
        Small(".venv/bin/python benchmarks/inference_latency.py --families gcivl --calls 100 --windows 1"),
    ),
    (
        ".venv/bin/python benchmarks/sim_throughput.py",
        Small(""".venv/bin/python benchmarks/sim_throughput.py --tasks reach --steps 100 --repeats 1 --envs 2
        --collect 2000 --collect-envs 2"""),
    ),
    # docs/export.md (from the README's copy: its checkpoint)
    (
        "spine-export runs/train/checkpoint --out runs/bundle",
        Small("spine-export runs/train/checkpoint --out runs/bundle --samples 64"),
    ),
    (
        "spine-export runs/train/checkpoint --out runs/bundle --eval-episodes 50",
        Small("spine-export runs/train/checkpoint --out runs/bundle --eval-episodes 2"),
    ),
    (
        "spine-export runs/train/checkpoint --out runs/bundle_q --eval-episodes 50 --quantize int8",
        Small("spine-export runs/train/checkpoint --out runs/bundle_q --eval-episodes 2 --quantize int8"),
    ),
    (
        "spine-run runs/bundle --task reach --episodes 20 --log runs/run [--chunk-mode ensemble]",
        Small(
            "spine-run runs/bundle --task reach --episodes 2 --log runs/run_ensemble --chunk-mode ensemble"
        ),
    ),
    (
        ".venv/bin/python benchmarks/inference_latency.py --plot benchmarks/inference_latency.png",
        Small(""".venv/bin/python benchmarks/inference_latency.py --plot benchmarks/inference_latency.png
        --families sac_her --calls 100 --windows 1"""),
    ),
    # docs/replay.md: the real WidowX log
    (
        """spine-train task=widowx_reach policy=gcbc dataset=runs/wx/data/widowx_reach_log.npz
        out=runs/wx/train
        steps=3000 eval_every=3000 eval_episodes=2 torch_threads=1 policy.hidden=64 policy.layers=2
        policy.relabel=true""",
        Small("""spine-train task=widowx_reach policy=gcbc dataset=runs/wx/data/widowx_reach_log.npz
        out=runs/wx/train
        steps=200 eval_every=200 eval_episodes=2 torch_threads=1 policy.hidden=64 policy.layers=2
        policy.relabel=true"""),
    ),
    (
        "spine-train-critic task=widowx_reach out=runs/wx/critic data.episodes=200 critic.steps=3000",
        Small(f"spine-train-critic task=widowx_reach out=runs/wx/critic {TINY_CRITIC}"),
    ),
    (
        "spine-export runs/wx/train/checkpoint --out runs/wx/bundle --critic runs/wx/critic/checkpoint",
        Small(
            """spine-export runs/wx/train/checkpoint --out runs/wx/bundle --critic
            runs/wx/critic/checkpoint --samples 64"""
        ),
    ),
    ("spine-replay $LOG --bundle runs/wx/bundle --out runs/wx/eval --mapping $MAP --start 70", AS_IS),
    (
        """spine-log-sim $LOG --mapping $MAP --out runs/wx/sysid --write-config
        configs/randomization/widowx200.yaml""",
        Small("""spine-log-sim $LOG --mapping $MAP --out runs/wx/sysid
        --write-config configs/randomization/widowx200.yaml --maxfev 10"""),
    ),
    # docs/replay.md: your arm's bag, on the UR5e and the Panda
    *[
        step
        for arm, bag_flags in (("ur5e", ""), ("panda", " --storage sqlite3 --distro humble"))
        for step in (
            (
                f".venv/bin/python tests/artifacts/foreign_arm_bag.py {arm} runs/{arm}_bag/bag{bag_flags}",
                AS_IS,
            ),
            (f"spine-log-dataset runs/{arm}_bag/bag --mapping $MAP --out runs/{arm}_bag/data", AS_IS),
            (
                f"spine-log-sim runs/{arm}_bag/bag --mapping $MAP --out runs/{arm}_bag/sysid",
                Small(
                    f"spine-log-sim runs/{arm}_bag/bag --mapping $MAP --out runs/{arm}_bag/sysid --maxfev 10"
                ),
            ),
            (
                f"""spine-train robot={arm} task=reach policy=gcbc dataset=runs/{arm}_bag/data/reach_log.npz
                out=runs/{arm}_bag/train steps=3000 eval_every=3000 eval_episodes=5 policy.relabel=true""",
                Small(f"""spine-train robot={arm} task=reach policy=gcbc
                dataset=runs/{arm}_bag/data/reach_log.npz
                out=runs/{arm}_bag/train policy.relabel=true {TINY_TRAIN}"""),
            ),
            (
                f"spine-train-critic robot={arm} task=reach out=runs/{arm}_bag/critic",
                Small(f"spine-train-critic robot={arm} task=reach out=runs/{arm}_bag/critic {TINY_CRITIC}"),
            ),
            (
                f"""spine-export runs/{arm}_bag/train/checkpoint --out runs/{arm}_bag/bundle
                --critic runs/{arm}_bag/critic/checkpoint""",
                Small(f"""spine-export runs/{arm}_bag/train/checkpoint --out runs/{arm}_bag/bundle
                --critic runs/{arm}_bag/critic/checkpoint --samples 64"""),
            ),
            (
                f"spine-run runs/{arm}_bag/bundle --episodes 20 --log runs/{arm}_bag/run",
                Small(f"spine-run runs/{arm}_bag/bundle --episodes 2 --log runs/{arm}_bag/run"),
            ),
            (
                f"""spine-replay runs/{arm}_bag/bag --bundle runs/{arm}_bag/bundle --mapping $MAP
                --out runs/{arm}_bag/eval""",
                AS_IS,
            ),
        )
    ],
    (".venv/bin/python tests/artifacts/foreign_arm_bag.py ur5e runs/ur5e_bag/states --no-commands", AS_IS),
    (
        """spine-log-sim runs/ur5e_bag/states --mapping configs/replay/ur5e.yaml --out
        runs/ur5e_bag/sysid_states""",
        Refused("no command topic /scaled_joint_trajectory_controller/joint_trajectory"),
    ),
    (
        """spine-log-dataset runs/ur5e_bag/states --mapping configs/replay/ur5e.yaml --out
        runs/ur5e_bag/data_states
        --actions next-position""",
        AS_IS,
    ),
    # docs/robots.md
    (
        "spine-collect robot=panda task=reach episodes=300 out=runs/panda/data",
        Small("spine-collect robot=panda task=reach episodes=8 out=runs/panda/data"),
    ),
    (
        """spine-train robot=panda task=reach policy=gcbc dataset=runs/panda/data/reach.npz
        out=runs/panda/train""",
        Small(f"""spine-train robot=panda task=reach policy=gcbc dataset=runs/panda/data/reach.npz
        out=runs/panda/train {TINY_TRAIN}"""),
    ),
    (
        "spine-train-critic robot=panda task=reach out=runs/panda/critic",
        Small(f"spine-train-critic robot=panda task=reach out=runs/panda/critic {TINY_CRITIC}"),
    ),
    (
        """spine-export runs/panda/train/checkpoint --out runs/panda/bundle --critic
        runs/panda/critic/checkpoint""",
        Small("""spine-export runs/panda/train/checkpoint --out runs/panda/bundle --critic
        runs/panda/critic/checkpoint
        --samples 64"""),
    ),
    (
        "spine-run runs/panda/bundle --episodes 20 --log runs/panda/run",
        Small("spine-run runs/panda/bundle --episodes 2 --log runs/panda/run"),
    ),
    ("spine-replay runs/panda/run/log --bundle runs/panda/bundle --out runs/panda/replay", AS_IS),
    # docs/ros.md (from the README's copy: its demo bundle and runs/bundle)
    (
        ".venv/bin/spine-stack --params-file configs/ros/stack.yaml --out runs/stack -p episodes:=20",
        Small(f".venv/bin/spine-stack --params-file configs/ros/stack.yaml --out runs/stack {TINY_STACK}"),
    ),
    (
        "spine-collect task=maze mode=navigate episodes=200 action_noise=0.1 out=runs/maze/data",
        Small("spine-collect task=maze mode=navigate episodes=10 action_noise=0.1 out=runs/maze/data"),
    ),
    (
        "spine-train task=maze policy=hiql dataset=runs/maze/data/maze.npz out=runs/maze/train steps=10000",
        Small(f"""spine-train task=maze policy=hiql dataset=runs/maze/data/maze.npz out=runs/maze/train
        {TINY_TRAIN}"""),
    ),
    (
        "spine-export runs/maze/train/checkpoint --out runs/maze/bundle",
        Small("spine-export runs/maze/train/checkpoint --out runs/maze/bundle --samples 64"),
    ),
    (
        """spine-stack --params-file configs/ros/stack.yaml --task maze --bundle runs/maze/bundle
        --out runs/stack_maze -p episodes:=10""",
        Small(f"""spine-stack --params-file configs/ros/stack.yaml --task maze --bundle runs/maze/bundle
        --out runs/stack_maze {TINY_STACK}"""),
    ),
    (
        "spine-safety-node --ros-args --params-file configs/ros/stack.yaml -p rate_hz:=500.0",
        Daemon(seconds=8),
    ),
    (
        "spine-policy-node --ros-args --params-file configs/ros/stack.yaml -p bundle:=runs/bundle",
        Daemon(seconds=8),
    ),
    ("spine-sim-robot --ros-args --params-file configs/ros/stack.yaml -p episodes:=0", Daemon(seconds=8)),
    (
        'spine-recorder --ros-args -p out:=runs/bag -p "topics:=[/joint_states, /spine/command]"',
        Daemon(seconds=8),
    ),
    (
        "ros2 launch launch/spine.launch.py params_file:=configs/ros/stack.yaml sim:=true record:=true",
        Exempt(NO_ROS2),
    ),
    ('spine-safety-node --ros-args -p "command_qos:=reliable,volatile,keep_last:1,deadline:0.003"', Daemon()),
    ("spine-safety-node --ros-args -p estop_qos:=sensor_data", Daemon()),
    ('ros2 topic pub --once /spine/estop std_msgs/msg/Bool "{data: true}"', Exempt(NO_ROS2)),
    (
        'ros2 topic pub --once /spine/goal geometry_msgs/msg/PointStamped "{header: {frame_id: world}, '
        'point: {x: 0.4, y: 0.0, z: 0.3}}"',
        Exempt(NO_ROS2),
    ),
    # docs/safety.md
    (
        """spine-train-critic task=reach_obstacles out=runs/critic/reach_obstacles
        data.episodes=400 critic.steps=4000""",
        Small(f"spine-train-critic task=reach_obstacles out=runs/critic/reach_obstacles {TINY_CRITIC}"),
    ),
    (
        """spine-train-critic task=push out=runs/critic/push data.episodes=300 data.episode_steps=150
        critic.threshold=0.7""",
        Small("""spine-train-critic task=push out=runs/critic/push data.episodes=6 data.episode_steps=150
        critic.threshold=0.7 critic.steps=100"""),
    ),
    (
        "for t in reach_obstacles push; do spine-export runs/critic/$t/checkpoint --out runs/critic/$t; done",
        AS_IS,
    ),
    (
        """.venv/bin/python benchmarks/safety_efficacy.py --task reach_obstacles
        --critic runs/critic/reach_obstacles/critic.onnx --episodes 20 --out runs/safety_efficacy""",
        Small(""".venv/bin/python benchmarks/safety_efficacy.py --task reach_obstacles
        --critic runs/critic/reach_obstacles/critic.onnx --episodes 1 --out runs/safety_efficacy"""),
    ),
    (
        """.venv/bin/python benchmarks/safety_loop.py --critic runs/critic/reach_obstacles/critic.onnx
        --seconds 60 --spin-us 300 --warm-us 60""",
        Small(""".venv/bin/python benchmarks/safety_loop.py --critic runs/critic/reach_obstacles/critic.onnx
        --seconds 1 --spin-us 300 --warm-us 60"""),
    ),
    # docs/security.md (from the README's copy: the demo bundle configs/ros/stack.yaml names)
    ("spine-keystore create ~/robot_keystore", AS_IS),
    (
        "spine-stack ... --keystore ~/robot_keystore",
        Small(f"""spine-stack --params-file configs/ros/stack.yaml --out runs/stack_enclaves {TINY_STACK}
        --keystore ~/robot_keystore"""),
    ),
    ("spine-safety-node --ros-args --params-file configs/ros/stack.yaml", Daemon()),
    ("spine-keystore create ~/robot_keystore --command-topic /forward_position_controller/commands", AS_IS),
    (
        """spine-keystore enclave ~/robot_keystore /spine/operator2 --publish /spine/estop
        --subscribe /diagnostics""",
        AS_IS,
    ),
    ("spine-keystore list ~/robot_keystore", AS_IS),
    ("ros2 run ... --ros-args --enclave /spine/operator", Exempt(NO_ROS2)),
    # docs/dmc.md (written small already)
    (
        """spine-train task=dmc policy=sac_her dataset='' out=runs/dmc/train steps=300 eval_every=300
        eval_episodes=2 task.episode_steps=40 policy.num_envs=2 policy.warmup_steps=200
        policy.buffer_episodes=20 policy.hidden=64""",
        AS_IS,
    ),
    ("spine-export runs/dmc/train/checkpoint --out runs/dmc/bundle --eval-episodes 2", AS_IS),
    ("spine-run runs/dmc/bundle --episodes 2 --log runs/dmc/run", AS_IS),
    ("spine-replay runs/dmc/run/log --bundle runs/dmc/bundle --out runs/dmc/replay", AS_IS),
    (
        """spine-stack --params-file configs/ros/stack.yaml --task dmc --bundle runs/dmc/bundle
        --out runs/dmc/stack -p episodes:=2 -p episode_s:=2.0""",
        AS_IS,
    ),
    ("spine-export runs/cartpole/train/checkpoint --out runs/cartpole/bundle --eval-episodes 1", AS_IS),
    (
        """spine-stack --params-file configs/ros/stack.yaml --task dmc --bundle runs/cartpole/bundle
        --out runs/cartpole/stack -p episodes:=1 -p episode_s:=2.0""",
        AS_IS,
    ),
    (
        """spine-train task=dmc task.domain=cartpole task.task=swingup policy=sac_her dataset=''
        out=runs/cartpole/train steps=300 eval_every=300 eval_episodes=1 task.episode_steps=40
        policy.num_envs=2 policy.warmup_steps=200 policy.buffer_episodes=20 policy.hidden=64
        policy.gamma=0.99""",
        AS_IS,
    ),
    ("spine-collect task=dmc", Refused("task 'dmc' has no scripted expert to record")),
    # docs/ppo.md (written small already)
    (
        "spine-train task=reach policy=ppo dataset='' out=runs/ppo steps=5 eval_every=5 eval_episodes=2 "
        "policy.num_envs=16",
        AS_IS,
    ),
    ("spine-export runs/ppo/checkpoint --out runs/ppo/bundle --samples 64", AS_IS),
    ("spine-run runs/ppo/bundle --episodes 2 --log runs/ppo/run", AS_IS),
    ("spine-replay runs/ppo/run/log --bundle runs/ppo/bundle --out runs/ppo/replay", AS_IS),
    # docs/scale.md (written small already)
    (".venv/bin/python benchmarks/scale.py --worlds 8 --steps 2 --repeats 1", AS_IS),
    # docs/isaac.md: the .venv-isaac commands run where that environment is set up
    (
        "./spine.sh setup-isaac",
        Exempt(
            "installs Isaac Lab's own environment, .venv-isaac (~6 min, 7.8 GB), as ./spine.sh setup "
            "does .venv"
        ),
    ),
    (
        ".venv-isaac/bin/python -m isaac.check --robot arm7 --num_envs 64 --steps 10 --parity 50",
        Small(
            ".venv-isaac/bin/python -m isaac.check --robot arm7 --num_envs 8 --steps 5 --parity 10",
            needs=ISAAC,
        ),
    ),
    (
        """.venv-isaac/bin/python -m isaac.train --robot arm7 --num_envs 512 --max_iterations 20
        --num_steps_per_env 16 --out runs/isaac/arm7""",
        Small(
            """.venv-isaac/bin/python -m isaac.train --robot arm7 --num_envs 16 --max_iterations 2
            --num_steps_per_env 8 --out runs/isaac/arm7""",
            needs=ISAAC,
        ),
    ),
    (
        """.venv-isaac/bin/isaaclab train --rl_library rsl_rl --task Spine-Reach-Arm7-v0
        --external_callback isaac.register.register_tasks --device cpu --num_envs 64 --max_iterations 1""",
        Small(
            """.venv-isaac/bin/isaaclab train --rl_library rsl_rl --task Spine-Reach-Arm7-v0
            --external_callback isaac.register.register_tasks --device cpu --num_envs 16
            --max_iterations 1""",
            needs=ISAAC,
        ),
    ),
    (
        ".venv/bin/python -m isaac.import_policy runs/isaac/arm7 --out runs/isaac/arm7/checkpoint",
        Run(needs=ISAAC),  # imports the run isaac.train wrote
    ),
    (
        ".venv/bin/spine-export runs/isaac/arm7/checkpoint --out runs/isaac/arm7/bundle",
        Small(
            ".venv/bin/spine-export runs/isaac/arm7/checkpoint --out runs/isaac/arm7/bundle --samples 64",
            needs=ISAAC,
        ),
    ),
    (
        ".venv/bin/spine-run runs/isaac/arm7/bundle --episodes 20 --log runs/isaac/arm7/run",
        Small(
            ".venv/bin/spine-run runs/isaac/arm7/bundle --episodes 2 --log runs/isaac/arm7/run", needs=ISAAC
        ),
    ),
    (
        """.venv/bin/spine-replay runs/isaac/arm7/run/log --bundle runs/isaac/arm7/bundle
        --out runs/isaac/arm7/replay""",
        Run(needs=ISAAC),
    ),
    # docs/distributed.md (written small already)
    ("spine-collect task=reach episodes=20 ray_workers=2 out=runs/dist/data", AS_IS),
    (
        """torchrun --nproc_per_node=2 -m policies.train_app task=reach policy=sac_her dataset=''
        out=runs/dist/sac steps=100 policy.num_envs=2 policy.warmup_steps=100 eval_episodes=2""",
        AS_IS,
    ),
    (
        """torchrun --nproc_per_node=2 -m policies.train_app task=reach policy=ppo dataset=''
        out=runs/dist/ppo steps=3 policy.num_envs=8 eval_episodes=2""",
        AS_IS,
    ),
    (
        """torchrun --nproc_per_node=2 -m policies.train_app task=reach policy=gcbc
        dataset=runs/dist/data/reach.npz out=runs/dist/gcbc steps=200 eval_episodes=4""",
        AS_IS,
    ),
    (
        """torchrun --nproc_per_node=2 -m policies.critic_app task=reach out=runs/dist/critic data.episodes=10
        critic.steps=200""",
        AS_IS,
    ),
    *[
        (
            f"""torchrun --nnodes=2 --node_rank={rank} --nproc_per_node=8 --master_addr=10.0.0.1
            --master_port=29500 -m policies.train_app task=reach policy=gcbc dataset=runs/data/reach.npz
            out=runs/train batch_size=4096""",
            Exempt(
                "two machines, node 0 at 10.0.0.1 (tests/policies/test_distributed.py runs this form with "
                "both nodes on one machine over loopback)"
            ),
        )
        for rank in (0, 1)
    ],
    *[
        (
            command,
            Exempt(
                "acts on the machine's one Ray cluster: `ray stop` ends every Ray process of the user, "
                "other runs' too (tests/sim/test_ray_collect.py collects on a cluster of its own)"
            ),
        )
        for command in (
            "ray start --head --num-cpus=2",
            "spine-collect task=reach episodes=20 ray_workers=2 ray_address=auto out=runs/dist/ray_data",
            "ray stop",
        )
    ],
]
PLAN: dict[str, Run | Daemon | Refused | Exempt] = {}
for _key, _step in _PLAN:
    assert _one_line(_key) not in PLAN, f"two entries for {_key!r}"
    PLAN[_one_line(_key)] = _step


# -- reading the documents -------------------------------------------------------------------------

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)")
ASSIGNMENT = re.compile(r"^(export\s+)?[A-Za-z_]\w*=\S*(\s+[A-Za-z_]\w*=\S*)*$")
LOOKS_LIKE_A_COMMAND = re.compile(  # a line of a fenced block that reads as a command, not a diagram
    r"^(\./spine\.sh |spine-[a-z-]+ (-|[\w.~]\S*/|\w+=)|\.venv/bin/|ros2 (run|launch|topic|bag) "
    r"|export \w+=|[A-Z_]+=\S)"
)


@dataclass(frozen=True)
class Documented:
    """One command of a document: where it is, its text, whether it only sets variables."""

    file: str
    line: int
    text: str
    block: int  # which shell block of the file

    @property
    def assignment(self) -> bool:
        return bool(ASSIGNMENT.match(self.text))


def fenced_blocks(text: str) -> Iterator[tuple[str, int, list[str]]]:
    """(language, line number of the first body line, body lines) of each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence[0] * len(fence)):
            j += 1
        yield lang, i + 2, lines[i + 1 : j]
        i = j + 1


def strip_comment(line: str) -> str:
    """``line`` without a shell comment (``#`` at the start or after a blank, outside quotes)."""
    quote = ""
    for k, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k]
    return line


def shell_commands(lang: str, first: int, body: list[str]) -> list[tuple[int, str]]:
    """(line number, normalized command) of a shell block's commands."""
    out: list[tuple[int, str]] = []
    buf, start = "", first
    for k, raw in enumerate(body):
        line = raw
        if lang == "console" and not buf:
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        if not buf:
            start = first + k
        stripped = strip_comment(line).rstrip()
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        command = " ".join((buf + stripped).split())
        buf = ""
        if command:
            out.append((start, command))
    return out


def documented(file: str) -> list[Documented]:
    """Every command of ``file`` (relative to the repository), in document order."""
    found = []
    blocks = [b for b in fenced_blocks((REPO / file).read_text()) if b[0] in SHELL]
    for n, (lang, first, body) in enumerate(blocks):
        found += [Documented(file, line, text, n) for line, text in shell_commands(lang, first, body)]
    return found


def untagged_command_blocks(file: str) -> list[int]:
    """Line numbers of fenced blocks without a language whose lines start like commands."""
    return [
        first - 1
        for lang, first, body in fenced_blocks((REPO / file).read_text())
        if not lang and any(LOOKS_LIKE_A_COMMAND.match(line.strip()) for line in body)
    ]


def test_every_documented_command_has_a_plan() -> None:
    """Fast: every command in PLAN (run, small, daemon, refused or exempt), nothing stale."""
    commands = [c for f in DOCS for c in documented(f) if not c.assignment]
    missing = [f"{c.file}:{c.line}: {c.text}" for c in commands if c.text not in PLAN]
    assert not missing, (
        "documented commands in no table of tests/test_documented_commands.py (add each to PLAN: "
        "AS_IS, Small(...), Daemon(...), Refused(...) or Exempt(reason)):\n" + "\n".join(missing)
    )
    shown = {c.text for c in commands}
    stale = [k for k in PLAN if k not in shown]
    assert not stale, "PLAN entries no document shows any more (remove them):\n" + "\n".join(stale)
    untagged = [f"{f}:{line}" for f in DOCS for line in untagged_command_blocks(f)]
    assert not untagged, "blocks of commands without a language (tag them ```bash):\n" + "\n".join(untagged)
    for key, step in PLAN.items():  # a small setting is a different command, or it would be AS_IS
        assert not isinstance(step, Run) or step.command != key, f"Small({key!r}) is the command itself"


def test_the_parser_reads_shell_blocks() -> None:
    text = (
        "```bash\nLOG=x.bag  # a log\nspine-replay $LOG \\\n    --out  runs/r   # out\n\n"
        'ros2 topic pub /a std_msgs/msg/Bool "{data: true}"  # "#" in quotes\n```\n'
        "```console\n$ spine-summary runs/demo\nsuccess 100 %\n```\n```\nnot a shell block\n```\n"
    )
    got = [
        (line, cmd) for lang, first, body in fenced_blocks(text) if lang in SHELL
        for line, cmd in shell_commands(lang, first, body)
    ]  # fmt: skip
    assert got == [
        (2, "LOG=x.bag"),
        (3, "spine-replay $LOG --out runs/r"),
        (6, 'ros2 topic pub /a std_msgs/msg/Bool "{data: true}"'),
        (9, "spine-summary runs/demo"),
    ]
    assert Documented("f", 1, "export A=1 B=~/x", 0).assignment
    assert not Documented("f", 1, "spine-run x", 0).assignment


# -- running them ----------------------------------------------------------------------------------

OPTIONAL_ENVS = (".venv-isaac",)  # docs/isaac.md: ./spine.sh setup-isaac, Python 3.12
REQUIRES = {  # file -> the file whose copy it starts from, once that one has run
    "docs/export.md": "README.md",  # runs/train/checkpoint
    "docs/ros.md": "README.md",  # runs/demo/bundle (configs/ros/stack.yaml), runs/bundle
    "docs/security.md": "README.md",  # runs/demo/bundle
}


@dataclass
class Outcome:
    command: Documented
    how: str  # as documented | small | daemon | refused | exempt | set | already run | skipped | no plan
    ran: str = ""
    seconds: float = 0.0
    ok: bool = True
    output: str = ""

    def line(self) -> str:
        mark = "ok " if self.ok else "FAIL"
        extra = f" -> {self.ran}" if self.ran and self.ran != self.command.text else ""
        where = f"{self.command.file}:{self.command.line}"
        return f"{mark} {self.seconds:6.1f} s  {self.how:<13} {where}: {self.command.text}{extra}"


@dataclass
class Copy:
    """A clean copy of the repository and what has run in it."""

    root: Path
    done: set[str] = field(default_factory=set)  # commands that ran in it and succeeded


def make_copy(dest: Path) -> Copy:
    """The files git tracks or would track, the C extension built in place, ``.venv`` as set up."""
    dest.mkdir(parents=True)
    (dest.parent / "shared").symlink_to(SHARED)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_symlink():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(src, dest / rel)
        except FileNotFoundError:  # tracked but deleted in the working tree: gone from the copy too
            pass
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=dest, capture_output=True, text=True
    )
    assert build.returncode == 0, f"building the C extension in the copy failed:\n{build.stderr[-TAIL:]}"
    venv, real = dest / ".venv", Path(sys.prefix)
    venv.mkdir()
    for entry in real.iterdir():  # bin/, lib/, pyvenv.cfg, ...: this venv's, linked
        if entry.name != ".spine-installed":
            (venv / entry.name).symlink_to(entry)
    for optional in OPTIONAL_ENVS:  # other environments a page's commands use, where set up
        if (REPO / optional).is_dir():
            (dest / optional).symlink_to(REPO / optional)
    stamp = re.search(r"want=\$\((cat pyproject\.toml[^\n]*)\)\n", (dest / "spine.sh").read_text())
    assert stamp, "spine.sh no longer computes its setup stamp as `want=$(...)`: update make_copy"
    want = subprocess.run(
        ["bash", "-c", stamp.group(1)], cwd=dest, capture_output=True, text=True, check=True
    )
    (venv / ".spine-installed").write_text(want.stdout)
    return Copy(dest)


def command_env(copy: Copy, home: Path) -> dict[str, str]:
    """The environment of a user who set up the copy and activated its venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MENAGERIE_", "ROS_", "PYTEST_"))}
    home.mkdir(exist_ok=True)
    env.update(
        PATH=f"{copy.root / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(copy.root / ".venv"),
        PYTHONPATH=str(copy.root),
        HOME=str(home),
        ROS_DOMAIN_ID=str(fresh_domain()),
        # Warp's compiled kernels where a user's are (tests/sim/test_warp.py fills the cache before
        # this test runs): a cold build takes minutes here (docs/scale.md)
        WARP_CACHE_PATH=os.environ.get("WARP_CACHE_PATH", str(Path.home() / ".cache" / "warp")),
        PIP_DRY_RUN="1",  # whatever a command asks of pip, this venv stays as it is
        PIP_NO_INDEX="1",
        MPLBACKEND="Agg",
    )
    return env


def _script(prelude: list[str], command: str, exec_: bool = False) -> str:
    return "\n".join(["set -eo pipefail", *prelude, ("exec " if exec_ else "") + command])


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def run_file(file: str, copy: Copy, env: dict[str, str]) -> list[Outcome]:
    """Run ``file``'s commands in order in ``copy``; every command's outcome, failures included."""
    outcomes: list[Outcome] = []
    prelude: list[str] = []
    daemons: list[tuple[Outcome, subprocess.Popen, float, float]] = []  # (outcome, process, start, stop at)

    def stop_daemons() -> None:
        for outcome, proc, start, until in daemons:
            time.sleep(max(0.0, until - time.monotonic()))
            if proc.poll() is None:
                _stop(proc)
            try:
                out, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                _stop(proc, signal.SIGKILL)
                out, _ = proc.communicate()
                out += "\n[did not stop within 30 s of SIGINT]"
            outcome.output = out[-TAIL:]
            outcome.seconds = time.monotonic() - start
            outcome.ok = proc.returncode == 0
        daemons.clear()

    block = -1
    for cmd in documented(file):
        if cmd.block != block:
            stop_daemons()
            block = cmd.block
        if cmd.assignment:
            prelude.append(cmd.text)
            outcomes.append(Outcome(cmd, "set"))
            continue
        step = PLAN.get(cmd.text)
        if step is None:
            outcomes.append(Outcome(cmd, "no plan", ok=False, output="not in PLAN: see the plan test"))
            continue
        if isinstance(step, Exempt):
            outcomes.append(Outcome(cmd, "exempt", ran=step.reason))
            continue
        text = step.command or cmd.text
        if isinstance(step, Daemon):
            proc = subprocess.Popen(
                ["bash", "-c", _script(prelude, text, exec_=True)], cwd=copy.root, env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            outcome = Outcome(cmd, "daemon", ran=text)
            outcomes.append(outcome)
            daemons.append((outcome, proc, time.monotonic(), time.monotonic() + step.seconds))
            continue
        if isinstance(step, Run) and step.needs and not (copy.root / step.needs).exists():
            outcomes.append(Outcome(cmd, "skipped", ran=f"no {step.needs} in this checkout"))
            continue
        if isinstance(step, Run) and step.once and text in copy.done:
            outcomes.append(Outcome(cmd, "already run", ran=text))
            continue
        how = "refused" if isinstance(step, Refused) else ("small" if step.command else "as documented")
        outcome = Outcome(cmd, how, ran=text)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            ["bash", "-c", _script(prelude, text)], cwd=copy.root, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        timeout = step.timeout if isinstance(step, Run) else 300.0
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc, signal.SIGKILL)
            out, _ = proc.communicate()
            out += f"\n[killed after {timeout:.0f} s]"
        outcome.seconds = time.monotonic() - t0
        outcome.output = out[-TAIL:]
        if isinstance(step, Refused):
            outcome.ok = proc.returncode != 0 and step.message in out
        else:
            outcome.ok = proc.returncode == 0
            if outcome.ok:
                copy.done.add(text)
        outcomes.append(outcome)
    stop_daemons()
    return outcomes


def run_documents(files: list[str], base: Path) -> dict[str, list[Outcome]]:
    """Run ``files`` (and what they require), ``WORKERS`` files at a time, each in its own copy."""
    wanted: list[str] = []
    for f in files:
        chain = [f]
        while chain[-1] in REQUIRES:
            chain.append(REQUIRES[chain[-1]])
        wanted += [g for g in reversed(chain) if g not in wanted]
    results: dict[str, list[Outcome]] = {}
    copies: dict[str, Copy] = {}
    lock = threading.Lock()

    def one(f: str) -> None:
        dest = base / f.replace("/", "_").removesuffix(".md")
        if f in REQUIRES:  # start where the required file left off
            src = copies[REQUIRES[f]]
            dest.mkdir(parents=True)
            (dest / "shared").symlink_to(SHARED)
            shutil.copytree(src.root, dest / "spine", symlinks=True)
            copy = Copy(dest / "spine", set(src.done))
        else:
            copy = make_copy(dest / "spine")
        with lock:
            copies[f] = copy
        env = command_env(copy, dest / "home")
        where = subprocess.run(
            ["python", "-c", "import deploy, sim; print(deploy.__file__, sim.__file__)"],
            cwd=copy.root, env=env, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        assert len(where) == 2 and all(Path(w).is_relative_to(copy.root) for w in where), (
            f"the copy's commands import Spine from {where}, not from the copy {copy.root}"
        )
        results[f] = run_file(f, copy, env)

    pending = list(wanted)
    running: dict[Future, str] = {}
    with ThreadPoolExecutor(WORKERS) as pool:
        while pending or running:
            ready = [f for f in pending if f not in REQUIRES or REQUIRES[f] in results]
            for f in ready[: WORKERS - len(running)]:
                pending.remove(f)
                running[pool.submit(one, f)] = f
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                f = running.pop(fut)
                if fut.exception() is not None:
                    results[f] = [Outcome(Documented(f, 0, "(setting up its copy)", 0), "setup", ok=False,
                                          output=repr(fut.exception()))]  # fmt: skip
    return results


def _selected_files(request: pytest.FixtureRequest) -> list[str]:
    files = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.module is not None and item.module.__name__ == __name__ and callspec is not None:
            files.append(callspec.params["doc"])
    return files or DOCS


@pytest.fixture(scope="module")
def doc_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, list[Outcome]]]:
    if not (SHARED / "data").is_dir():
        pytest.skip(f"{SHARED / 'data'} not found: the documents' commands read the real log and arms there")
    base = tmp_path_factory.mktemp("documented")
    t0, cpu0 = time.monotonic(), _children_cpu()
    results = run_documents(_selected_files(request), base)
    print(
        f"\ndocumented commands of {', '.join(sorted(results))}: {time.monotonic() - t0:.0f} s wall, "
        f"{_children_cpu() - cpu0:.0f} s CPU"
    )
    yield results
    if all(o.ok for outcomes in results.values() for o in outcomes):
        shutil.rmtree(base, ignore_errors=True)  # the copies' runs/ (a failure's stay, to look at)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_documented_commands_run(doc: str, doc_runs: dict[str, list[Outcome]]) -> None:
    outcomes = doc_runs[doc]
    print("\n".join(o.line() for o in outcomes))
    failed = [o for o in outcomes if not o.ok]
    assert not failed, "\n\n".join(f"{o.line()}\n{o.output}" for o in failed)
