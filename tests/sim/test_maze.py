"""Maze: layouts, planner, costs, the expert's success and goal-free navigate collection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import sim
from sim.collect import collect, load_dataset
from sim.experts.maze_expert import MazeExpert
from sim.robots.pointmass import constants as c
from sim.robots.pointmass.layouts import LAYOUTS, MazeLayout, load_layout
from sim.tasks.maze import COST_COLLISION, COST_JOINT_LIMIT, COST_SPEED, MazeConfig

SIZES = {"medium": ((8, 8), 24), "large": ((9, 12), 46)}  # (rows, cols), free cells


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layouts_parse_with_intended_sizes(name: str) -> None:
    layout = load_layout(name, c.CELL_SIZE)
    shape, n_free = SIZES[name]
    assert layout.shape == shape
    assert len(layout.free_cells) == n_free
    assert len(layout.wall_cells) == shape[0] * shape[1] - n_free
    for cell in layout.free_cells:  # centers and cells round-trip
        assert layout.cell_of(layout.cell_center(cell)) == cell
    low, high = layout.inner_bounds()
    np.testing.assert_allclose(high - low, (np.array(shape[::-1]) - 2) * c.CELL_SIZE)


def test_bad_maps_are_refused() -> None:
    with pytest.raises(ValueError, match="outer ring"):
        MazeLayout.parse("open", "###\n#..\n###", 1.0)
    with pytest.raises(ValueError, match="not all connected"):
        MazeLayout.parse("split", "#####\n#.#.#\n#####", 1.0)
    with pytest.raises(ValueError, match="only '#'"):
        MazeLayout.parse("odd", "###\n#x#\n###", 1.0)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_planner_paths_step_through_free_cells(name: str) -> None:
    layout = load_layout(name, c.CELL_SIZE)
    cells = layout.free_cells
    for start in cells[::3]:
        for goal in cells:
            path = layout.shortest_path(start, goal)
            assert path[0] == start and path[-1] == goal
            assert all(layout.is_free(cell) for cell in path)
            steps = np.abs(np.diff(np.array(path), axis=0)).sum(axis=1)
            assert np.all(steps == 1)  # 4-connected moves, no jumps through walls
            assert len(path) == len(layout.shortest_path(goal, start))
            assert len(path) - 1 >= abs(goal[0] - start[0]) + abs(goal[1] - start[1])
    with pytest.raises(ValueError, match="not free"):
        layout.shortest_path(cells[0], layout.wall_cells[0])


def test_wrong_layout_or_field_names_it() -> None:
    with pytest.raises(ValueError, match=r"layout='huge'.*medium"):
        sim.make("maze", layout="huge")
    with pytest.raises(TypeError, match="layot"):
        sim.make("maze", layot="large")
    with pytest.raises(ValueError, match="reward"):
        MazeConfig(reward="shaped")


def test_two_registered_layouts_differ_in_spec() -> None:
    medium, large = sim.make("maze").task_spec, sim.make("maze_large").task_spec
    assert (medium.name, large.name) == ("maze", "maze_large")
    assert (medium.episode_steps, large.episode_steps) == (500, 1000)
    assert medium.joint_pos_max != large.joint_pos_max
    assert sim.make("maze", layout="large").task_spec.joint_pos_max == large.joint_pos_max
    assert medium.action.unit == "m" and medium.goal.size == 2


@pytest.mark.filterwarnings("ignore:.*Box observation space m.* is -?infinity")
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")
def test_gymnasium_env_checker_passes() -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(sim.make("maze"), skip_render_check=True)


def test_reset_places_agent_and_goal_in_distinct_free_cells() -> None:
    env = sim.make("maze")
    layout = env.layout
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        start, goal = layout.cell_of(obs["achieved_goal"]), layout.cell_of(obs["desired_goal"])
        assert layout.is_free(start) and layout.is_free(goal) and start != goal
        np.testing.assert_allclose(obs["desired_goal"], layout.cell_center(goal), atol=1e-6)
        assert np.all(
            np.abs(obs["achieved_goal"] - layout.cell_center(start)) <= env.config.init_noise + 1e-6
        )
        assert info["cost"] == {COST_JOINT_LIMIT: 0.0, COST_COLLISION: 0.0, COST_SPEED: 0.0}
    with pytest.raises(ValueError, match="goalz"):
        env.reset(options={"goalz": np.zeros(2)})


def test_costs_for_walls_bounds_and_speed() -> None:
    env = sim.make("maze", episode_steps=60)
    layout = env.layout
    start = layout.cell_center((1, 1))  # a corridor cell; (1, 3) is an inner wall
    env.reset(seed=0, options={"joint_pos": start, "goal": start})
    costs = [env.step(layout.cell_center((1, 3)))[4]["cost"] for _ in range(20)]
    assert costs[-1][COST_COLLISION] == 1.0  # pressed against the wall block
    assert env.state()["joint_pos"][0] < layout.cell_center((1, 3))[0] - 0.5  # and stopped by it
    env.reset(seed=0, options={"joint_pos": start, "goal": start})
    info = [env.step(start + np.array([0.0, 5.0]))[4] for _ in range(20)][-1]  # into the outer wall
    assert info["cost"][COST_JOINT_LIMIT] == 1.0
    env.reset(seed=0, options={"joint_pos": layout.cell_center((3, 1)), "goal": start})
    speeds = [env.step(layout.cell_center((3, 4)))[4]["cost"][COST_SPEED] for _ in range(6)]
    assert max(speeds) == 1.0  # a 3 m jump of the target is far above max_delta
    reward = env.compute_reward(np.zeros((3, 4, 2)), np.ones((3, 4, 2)), {})
    np.testing.assert_allclose(reward, -np.sqrt(2.0))
    sparse = sim.make("maze", reward="sparse")
    np.testing.assert_array_equal(
        sparse.compute_reward(np.zeros((2, 2)), [[0.1, 0.0], [2.0, 0.0]], {}), [0.0, -1.0]
    )


@pytest.mark.parametrize(("task", "episodes", "min_successes"), [("maze", 20, 18), ("maze_large", 3, 3)])
def test_expert_reaches_goals_safely(task: str, episodes: int, min_successes: int) -> None:
    env = sim.make(task)
    expert = MazeExpert(env)
    successes, costs = 0, 0.0
    for seed in range(episodes):
        env.reset(seed=seed)
        truncated = False
        while not truncated:
            state = env.state()
            action = expert.act(state)
            assert np.all(np.abs(action - state["joint_pos"]) <= env.config.max_delta + 1e-9)
            _, _, _, truncated, info = env.step(action)
            costs += sum(info["cost"].values())
        successes += info["is_success"]
    assert successes >= min_successes
    assert costs == 0


def test_navigate_collection_wanders_over_the_maze(tmp_path: Path) -> None:
    episodes, steps = 4, 300
    path = collect(
        "maze", episodes, seed=3, out_dir=tmp_path, task_kwargs={"episode_steps": steps},
        action_noise=0.05, mode="navigate",
    )  # fmt: skip
    data, meta = load_dataset(path), json.loads(path.with_suffix(".json").read_text())
    assert meta["mode"] == "navigate" and meta["expert_success_rate"] is None
    assert meta["navigate_targets_reached"] >= 2 * episodes
    assert len(data["reward"]) == episodes * steps
    layout = load_layout("medium", c.CELL_SIZE)
    visited = {layout.cell_of(xy) for xy in data["achieved_goal"]}
    assert all(layout.is_free(cell) for cell in visited)
    assert len(visited) >= 0.75 * len(layout.free_cells)
    targets = {layout.cell_of(g) for g in data["desired_goal"]}  # temporary targets: cell centers
    centers = np.array([layout.cell_center(cell) for cell in targets])
    assert len(targets) >= 2 * episodes
    assert np.min(np.linalg.norm(data["desired_goal"][:, None] - centers[None], axis=2), axis=1).max() < 1e-6
    env = sim.make("maze")
    reward = env.compute_reward(data["next_achieved_goal"], data["desired_goal"], {})
    np.testing.assert_allclose(data["reward"], reward, atol=1e-6)
    assert data["cost_collision"].mean() <= 0.01
    assert not np.allclose(data["action"], data["expert_action"])


def test_hydra_task_configs_compose() -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from sim.config_schema import register_collect_schemas

    register_collect_schemas()
    config_dir = str(Path(__file__).resolve().parents[2] / "configs")
    with initialize_config_dir(version_base=None, config_dir=config_dir):
        cfg = compose("collect", overrides=["task=maze_large", "mode=navigate", "task.episode_steps=7"])
        assert cfg.mode == "navigate"
        env = sim.make("maze_large", **OmegaConf.to_container(cfg.task))
        assert env.config.layout == "large" and env.task_spec.episode_steps == 7
        with pytest.raises(Exception, match="layot"):
            compose("collect", overrides=["task=maze", "task.layot=large"])
